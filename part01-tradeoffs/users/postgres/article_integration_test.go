//go:build integration

package postgres_test

import (
	"database/sql"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", as the article's adapter uses database/sql
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
)

// articleAdapter models the article's PostgreSQL adapter: database/sql, a
// plain INSERT for Save, and the driver's error returned as is by FindByID.
type articleAdapter struct{ db *sql.DB }

func (a articleAdapter) findByID(id string) (*domain.User, error) {
	var u domain.User
	if err := a.db.QueryRow(`SELECT id, name, email FROM article_users WHERE id = $1`, id).Scan(&u.ID, &u.Name, &u.Email); err != nil {
		return nil, err
	}
	return &u, nil
}

func (a articleAdapter) save(u *domain.User) error {
	_, err := a.db.Exec(`INSERT INTO article_users (id, name, email) VALUES ($1, $2, $3)`, u.ID, u.Name, u.Email)
	return err
}

// Erratum 4 on the stack's PostgreSQL: saving a user twice fails with a
// unique violation (SQLSTATE 23505), and an unknown ID comes back as
// database/sql's ErrNoRows, so a caller must import database/sql to tell "not
// found" from a failure. The chapter's adapter upserts and returns
// domain.ErrNotFound (contract cases "Save twice upserts", "FindByID/unknown
// ID is ErrNotFound").
func TestArticleAdapterOnPostgres(t *testing.T) {
	stack.Require(t, stack.Postgres)
	db, err := sql.Open("pgx", stack.DatabaseURL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(1) // one session: the TEMP table below lives in it
	_, err = db.Exec(`CREATE TEMP TABLE article_users (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL)`)
	require.NoError(t, err)
	a := articleAdapter{db}

	ada := &domain.User{ID: "ada", Name: "Ada", Email: "ada@example.com"}
	require.NoError(t, a.save(ada))
	ada.Name = "Ada Lovelace"
	err = a.save(ada)
	var pg *pgconn.PgError
	require.ErrorAs(t, err, &pg, "saving the same user twice")
	assert.Equal(t, "23505", pg.Code, "unique_violation")

	_, err = a.findByID("nobody")
	assert.ErrorIs(t, err, sql.ErrNoRows)
	assert.False(t, errors.Is(err, domain.ErrNotFound), "the port's not-found is not what the article's adapter returns")
}

// The article opens the database with db, _ := sql.Open(…): sql.Open does not
// connect, so a database that is not there is no error until the first query.
// The demo pings at start instead (openPostgres).
func TestArticleSQLOpenDoesNotConnect(t *testing.T) {
	db, err := sql.Open("pgx", "postgres://masterclass@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	require.NoError(t, err, "nothing listens on port 1, and sql.Open says nothing")
	defer db.Close()
	assert.Error(t, db.PingContext(t.Context()), "the first use finds out")
}
