// Package pgmigrate runs the chapter's DDL under one advisory lock, shared by
// pgstore and payments because both create schema part07: two sessions
// running CREATE SCHEMA IF NOT EXISTS at once can both pass the check, and
// one then fails on pg_namespace's unique index.
package pgmigrate

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lock is the advisory lock key: "part07" + 1.
const lock = 0x7061727430370001

// Run executes stmts in one transaction holding the lock; each statement
// must be idempotent (IF NOT EXISTS, CREATE OR REPLACE).
func Run(ctx context.Context, db *pgxpool.Pool, stmts ...string) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lock)); err != nil {
			return err
		}
		for _, stmt := range stmts {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
}
