// Package repository has the shape of the article's adapter: a struct whose
// database handle is an unexported field.
package repository

import (
	"database/sql"

	"example.com/layout/internal/domain"
)

// SQLProfileStore implements domain.ProfileStore.
type SQLProfileStore struct {
	conn *sql.DB
}

// ByID reads one profile.
func (r *SQLProfileStore) ByID(id string) (*domain.Profile, error) {
	var p domain.Profile
	err := r.conn.QueryRow("SELECT id, name FROM profiles WHERE id = $1", id).Scan(&p.ID, &p.Name)
	return &p, err
}

// Put writes one profile.
func (r *SQLProfileStore) Put(p *domain.Profile) error {
	_, err := r.conn.Exec("INSERT INTO profiles (id, name) VALUES ($1, $2)", p.ID, p.Name)
	return err
}
