// Command api has the shape of the article's cmd/api/main.go: it wires the
// adapter and the service by setting their fields from package main.
package main

import (
	"database/sql"

	"example.com/layout/internal/domain"
	"example.com/layout/internal/repository"
)

func main() {
	db, _ := sql.Open("postgres", "postgres://localhost/profiles")
	store := &repository.SQLProfileStore{Conn: db}
	svc := &domain.ProfileService{Store: store}
	_ = svc
}
