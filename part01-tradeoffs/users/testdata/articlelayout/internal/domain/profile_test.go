package domain

import "testing"

// fakeStore has the shape of the article's test mock: the lookup only.
type fakeStore struct{}

func (fakeStore) ByID(id string) (*Profile, error) { return &Profile{ID: id, Name: "test"}, nil }

func TestGet(t *testing.T) {
	s := &ProfileService{store: fakeStore{}}
	if p, _ := s.Get("7"); p.ID != "7" {
		t.Fatal(p)
	}
}
