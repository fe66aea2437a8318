// Package domain has the shape of the article's internal/domain/user.go: the
// entity, the repository port and the service that uses it, in one package,
// with the service's dependency in an unexported field. The names are this
// project's; TestArticleLayoutAsWritten builds a copy.
package domain

// Profile is the entity.
type Profile struct {
	ID, Name string
}

// ProfileStore is the port.
type ProfileStore interface {
	ByID(id string) (*Profile, error)
	Put(p *Profile) error
}

// ProfileService is the application logic, here in the innermost package.
type ProfileService struct {
	store ProfileStore
}

// Get returns the profile with id.
func (s *ProfileService) Get(id string) (*Profile, error) { return s.store.ByID(id) }
