// Package pgstore is an idempotency.Store on PostgreSQL (pgx v5): the
// article's "Database Fallback Schema", made to work. Records live in
// part07.idempotency_keys, one row per (tenant, key), durable across crashes,
// unlike a Redis without AOF.
//
// What differs from the article's schema, and why:
//
//   - No partial unique index "WHERE expires_at > NOW()": PostgreSQL rejects
//     it (index predicates must be IMMUTABLE, and now() is not), and the
//     primary key already makes the key unique. Expiry is a comparison in the
//     claim instead: an expired row is taken over as if it were absent.
//   - The primary key is (tenant, idemp_key), not the bare key, so two
//     clients' keys never meet.
//   - response_body is BYTEA: TEXT rejects a NUL byte and any body that is not
//     valid UTF-8 (a gzip-encoded response, an image).
//   - There is no 'failed' status; a failure releases the key. claim_token
//     names the holder, so a holder whose claim expired cannot overwrite the
//     request that took it over.
//
// Claim is one call of the function part07.idempotency_claim (insert, take
// over an expired row, or return the live one), so a first request costs two
// statements (claim, complete) and a replay one. The function undoes a claim
// it would write after the caller's deadline (clock_timestamp(), the
// server's clock): a statement a stalled server runs after the caller gave
// up claims nothing. A claim can still pass that check and then stall in its
// commit (a WAL flush on a stalled disk, a synchronous standby that does not
// answer), invisible to other sessions until the commit ends; Release (the
// function part07.idempotency_release) waits for such a commit before it
// deletes, so the caller's release is never overtaken by its own claim.
// Expired rows stay until Purge deletes them; run it periodically.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sysdesign-masterclass/golang/part07-idempotency/idempotency"
	"github.com/sysdesign-masterclass/golang/part07-idempotency/internal/pgmigrate"
)

var _ idempotency.Store = (*Store)(nil)

// DB is what the store needs from pgx: *pgxpool.Pool, *pgx.Conn and pgx.Tx
// satisfy it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// schema creates the chapter's table and claim function. The CHECKs repeat
// the middleware's rules so rows written around the store still make sense.
var schema = []string{
	`CREATE SCHEMA IF NOT EXISTS part07`,
	fmt.Sprintf(`CREATE TABLE IF NOT EXISTS part07.idempotency_keys (
		tenant           text        NOT NULL CHECK (tenant ~ '^[A-Za-z0-9._-]{0,%d}$'),
		idemp_key        text        NOT NULL CHECK (octet_length(idemp_key) BETWEEN 1 AND %d),
		payload_hash     char(64)    NOT NULL,
		status           text        NOT NULL CHECK (status IN ('in-progress', 'completed')),
		claim_token      text        NOT NULL,
		response_code    int         CHECK (response_code BETWEEN 100 AND 599),
		response_headers jsonb,
		response_body    bytea,
		body_omitted     boolean     NOT NULL DEFAULT false,
		created_at       timestamptz NOT NULL DEFAULT now(),
		expires_at       timestamptz NOT NULL,
		PRIMARY KEY (tenant, idemp_key),
		CHECK (status = 'in-progress' OR response_code IS NOT NULL)
	)`, idempotency.MaxTenantLen, idempotency.MaxKeyLen),
	`CREATE INDEX IF NOT EXISTS idempotency_keys_expires_at ON part07.idempotency_keys (expires_at)`,
	// The deadline version replaces the one without it.
	`DROP FUNCTION IF EXISTS part07.idempotency_claim(text, text, char(64), text, interval)`,
	// READ COMMITTED gives each statement of the loop a fresh snapshot, so
	// the SELECT sees a row a concurrent INSERT committed while ours waited
	// on it; the loop covers a row deleted between two statements. A claim
	// written after p_deadline (the server stalled, the caller gave up) is
	// undone by the exception, so it claims nothing.
	`CREATE OR REPLACE FUNCTION part07.idempotency_claim(
		p_tenant text, p_key text, p_hash char(64), p_token text, p_ttl interval, p_deadline timestamptz)
	RETURNS TABLE (claimed boolean, r_status text, r_hash char(64), r_token text,
		r_code int, r_headers jsonb, r_body bytea, r_omitted boolean)
	LANGUAGE plpgsql AS $$
	DECLARE
		v_claimed boolean;
	BEGIN
		LOOP
			INSERT INTO part07.idempotency_keys (tenant, idemp_key, payload_hash, status, claim_token, expires_at)
			VALUES (p_tenant, p_key, p_hash, 'in-progress', p_token, now() + p_ttl)
			ON CONFLICT (tenant, idemp_key) DO NOTHING;
			v_claimed := FOUND;
			IF NOT v_claimed THEN
				UPDATE part07.idempotency_keys k
				SET payload_hash = p_hash, status = 'in-progress', claim_token = p_token,
					response_code = NULL, response_headers = NULL, response_body = NULL, body_omitted = false,
					created_at = now(), expires_at = now() + p_ttl
				WHERE k.tenant = p_tenant AND k.idemp_key = p_key AND k.expires_at <= now();
				v_claimed := FOUND;
			END IF;
			IF v_claimed THEN
				IF clock_timestamp() > p_deadline THEN
					RAISE EXCEPTION 'the claim reached PostgreSQL after its deadline' USING ERRCODE = '` + lateSQLState + `';
				END IF;
				RETURN QUERY SELECT true, NULL::text, NULL::char(64), NULL::text, NULL::int, NULL::jsonb, NULL::bytea, NULL::boolean;
				RETURN;
			END IF;
			RETURN QUERY SELECT false, k.status, k.payload_hash, k.claim_token, k.response_code,
				k.response_headers, k.response_body, k.body_omitted
			FROM part07.idempotency_keys k
			WHERE k.tenant = p_tenant AND k.idemp_key = p_key AND k.expires_at > now();
			IF FOUND THEN
				RETURN;
			END IF;
		END LOOP;
	END $$`,
	// Renew: the holder's live claim gets a new expiry and its live completed
	// record is left alone; another holder's live record is lost (false); an
	// expired row, whoever wrote it, or no row at all becomes the caller's
	// claim, as in the other stores. now() is the statement's start, so every
	// statement of the loop agrees on what has expired; the loop covers a row
	// deleted or inserted between two statements.
	`CREATE OR REPLACE FUNCTION part07.idempotency_renew(
		p_tenant text, p_key text, p_hash char(64), p_token text, p_ttl interval, p_deadline timestamptz)
	RETURNS boolean
	LANGUAGE plpgsql AS $$
	BEGIN
		LOOP
			UPDATE part07.idempotency_keys k
			SET expires_at = CASE WHEN k.status = 'in-progress' THEN now() + p_ttl ELSE k.expires_at END
			WHERE k.tenant = p_tenant AND k.idemp_key = p_key AND k.claim_token = p_token AND k.expires_at > now();
			EXIT WHEN FOUND;
			PERFORM FROM part07.idempotency_keys k
			WHERE k.tenant = p_tenant AND k.idemp_key = p_key AND k.expires_at > now();
			IF FOUND THEN
				RETURN false;
			END IF;
			UPDATE part07.idempotency_keys k
			SET payload_hash = p_hash, status = 'in-progress', claim_token = p_token,
				response_code = NULL, response_headers = NULL, response_body = NULL, body_omitted = false,
				created_at = now(), expires_at = now() + p_ttl
			WHERE k.tenant = p_tenant AND k.idemp_key = p_key AND k.expires_at <= now();
			EXIT WHEN FOUND;
			INSERT INTO part07.idempotency_keys (tenant, idemp_key, payload_hash, status, claim_token, expires_at)
			VALUES (p_tenant, p_key, p_hash, 'in-progress', p_token, now() + p_ttl)
			ON CONFLICT (tenant, idemp_key) DO NOTHING;
			EXIT WHEN FOUND;
		END LOOP;
		IF clock_timestamp() > p_deadline THEN
			RAISE EXCEPTION 'the renewal reached PostgreSQL after its deadline' USING ERRCODE = '` + lateSQLState + `';
		END IF;
		RETURN true;
	END $$`,
	// Release: a DELETE does not see a row whose INSERT has not committed
	// yet, and would report success while a claim that passed its deadline
	// check is still committing (a stalled WAL flush or synchronous
	// standby): that claim would land afterwards, held by nobody. An INSERT
	// of the same key waits for that transaction to end, so the function
	// starts with one (a placeholder it takes back at once if the key had no
	// row), then deletes the caller's claim with a fresh snapshot.
	`CREATE OR REPLACE FUNCTION part07.idempotency_release(p_tenant text, p_key text, p_token text)
	RETURNS boolean
	LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO part07.idempotency_keys (tenant, idemp_key, payload_hash, status, claim_token, expires_at)
		VALUES (p_tenant, p_key, repeat('0', 64), 'in-progress', '', '-infinity')
		ON CONFLICT (tenant, idemp_key) DO NOTHING;
		IF FOUND THEN
			DELETE FROM part07.idempotency_keys k
			WHERE k.tenant = p_tenant AND k.idemp_key = p_key AND k.claim_token = '';
			RETURN false;
		END IF;
		DELETE FROM part07.idempotency_keys k
		WHERE k.tenant = p_tenant AND k.idemp_key = p_key AND k.claim_token = p_token AND k.status = 'in-progress';
		RETURN FOUND;
	END $$`,
}

// lateSQLState is the error the claim and renew functions raise when they
// would write after the caller's deadline (a class of its own, "IK":
// idempotency key); the exception undoes the write.
const lateSQLState = "IK001"

// Migrate creates schema part07, the table and the claim function if they are
// missing. It is idempotent and safe to run from several processes at once.
func Migrate(ctx context.Context, db *pgxpool.Pool) error {
	if err := pgmigrate.Run(ctx, db, schema...); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}

// DefaultConnectTimeout bounds opening one connection when the DSN sets no
// connect_timeout. pgx has none: a connection to a stopped server otherwise
// waits for the caller's deadline, and the middleware's StoreTimeout is what
// turns that into a quick 503.
const DefaultConnectTimeout = 2 * time.Second

// Config parses dsn into a pool configuration with DefaultConnectTimeout
// unless the DSN sets its own connect_timeout.
func Config(dsn string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	return cfg, nil
}

// Store is an idempotency.Store on part07.idempotency_keys.
type Store struct{ db DB }

// New returns a Store using db. Run Migrate once before using it.
func New(db DB) *Store { return &Store{db: db} }

// Claim implements idempotency.Store.
func (s *Store) Claim(ctx context.Context, key idempotency.Key, claim idempotency.Record, ttl time.Duration) (*idempotency.Record, error) {
	var (
		claimed      bool
		status, hash *string
		token        *string
		code         *int
		header       http.Header
		body         []byte
		omitted      *bool
	)
	err := s.db.QueryRow(ctx, `SELECT * FROM part07.idempotency_claim($1, $2, $3, $4, $5, $6)`,
		key.Tenant, key.ID, claim.Fingerprint.String(), claim.Token, ttl, deadline(ctx)).
		Scan(&claimed, &status, &hash, &token, &code, &header, &body, &omitted)
	if err != nil {
		return nil, pgErr("claim", err)
	}
	if claimed {
		return nil, nil
	}
	rec := &idempotency.Record{State: idempotency.ParseState(*status), Token: *token, Header: header, Body: body, BodyOmitted: *omitted}
	if rec.Fingerprint, err = idempotency.ParseFingerprint(*hash); err != nil {
		return nil, fmt.Errorf("pgstore: claim: %w", err)
	}
	if code != nil {
		rec.Status = *code
	}
	return rec, nil
}

// Renew implements idempotency.Store with one call of
// part07.idempotency_renew.
func (s *Store) Renew(ctx context.Context, key idempotency.Key, claim idempotency.Record, ttl time.Duration) error {
	var held bool
	err := s.db.QueryRow(ctx, `SELECT part07.idempotency_renew($1, $2, $3, $4, $5, $6)`,
		key.Tenant, key.ID, claim.Fingerprint.String(), claim.Token, ttl, deadline(ctx)).Scan(&held)
	switch {
	case err != nil:
		return pgErr("renew", err)
	case !held:
		return idempotency.ErrClaimLost
	}
	return nil
}

// Complete implements idempotency.Store: written over the holder's row, over
// an expired row, or as a new row; not over another holder's live row.
func (s *Store) Complete(ctx context.Context, key idempotency.Key, rec idempotency.Record, ttl time.Duration) error {
	tag, err := s.db.Exec(ctx, `
		INSERT INTO part07.idempotency_keys AS k (tenant, idemp_key, payload_hash, status, claim_token,
			response_code, response_headers, response_body, body_omitted, expires_at)
		VALUES ($1, $2, $3, 'completed', $4, $5, $6, $7, $8, now() + $9)
		ON CONFLICT (tenant, idemp_key) DO UPDATE
		SET payload_hash = EXCLUDED.payload_hash, status = 'completed', claim_token = EXCLUDED.claim_token,
			response_code = EXCLUDED.response_code, response_headers = EXCLUDED.response_headers,
			response_body = EXCLUDED.response_body, body_omitted = EXCLUDED.body_omitted, expires_at = EXCLUDED.expires_at
		WHERE k.claim_token = EXCLUDED.claim_token OR k.expires_at <= now()`,
		key.Tenant, key.ID, rec.Fingerprint.String(), rec.Token, rec.Status, rec.Header, nonNil(rec.Body), rec.BodyOmitted, ttl)
	return affected(tag, err, "complete")
}

// Release implements idempotency.Store with one call of
// part07.idempotency_release, which waits for a claim or renewal of the key
// that is still committing before it deletes.
func (s *Store) Release(ctx context.Context, key idempotency.Key, token string) error {
	var deleted bool
	err := s.db.QueryRow(ctx, `SELECT part07.idempotency_release($1, $2, $3)`, key.Tenant, key.ID, token).Scan(&deleted)
	if err != nil {
		return fmt.Errorf("pgstore: release: %w", err)
	}
	return nil
}

// Purge deletes up to limit expired rows and returns how many it deleted;
// call it until it returns less than limit.
func (s *Store) Purge(ctx context.Context, limit int) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM part07.idempotency_keys WHERE ctid IN (
		SELECT ctid FROM part07.idempotency_keys WHERE expires_at <= now() LIMIT $1)`, limit)
	if err != nil {
		return 0, fmt.Errorf("pgstore: purge: %w", err)
	}
	return tag.RowsAffected(), nil
}

// deadline is ctx's deadline for the functions' p_deadline; nil (NULL) if it
// has none.
func deadline(ctx context.Context) *time.Time {
	if d, ok := ctx.Deadline(); ok {
		return &d
	}
	return nil
}

// pgErr wraps a statement's error; lateSQLState becomes
// context.DeadlineExceeded.
func pgErr(op string, err error) error {
	var e *pgconn.PgError
	if errors.As(err, &e) && e.Code == lateSQLState {
		return fmt.Errorf("pgstore: %s: %w (PostgreSQL ran it after the deadline and wrote nothing)", op, context.DeadlineExceeded)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

// affected turns "the upsert's WHERE refused" (no row written) into
// ErrClaimLost.
func affected(tag pgconn.CommandTag, err error, op string) error {
	switch {
	case err != nil:
		return fmt.Errorf("pgstore: %s: %w", op, err)
	case tag.RowsAffected() == 0:
		return idempotency.ErrClaimLost
	}
	return nil
}

// nonNil keeps an empty body an empty bytea rather than NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
