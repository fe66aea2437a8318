package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	valid := User{ID: "ada-1", Name: "Ada Lovelace", Email: "ada@example.com"}
	with := func(f func(*User)) *User { u := valid; f(&u); return &u }
	tests := []struct {
		name  string
		user  *User
		field string // "" = valid
	}{
		{"valid", &valid, ""},
		{"unicode name", with(func(u *User) { u.Name = "Zoë 山田" }), ""},
		{"subdomain email", with(func(u *User) { u.Email = "a.b+tag@mail.example.co.uk" }), ""},
		{"nil user", nil, "user"},
		{"empty id", with(func(u *User) { u.ID = "" }), "id"},
		{"id with slash", with(func(u *User) { u.ID = "a/b" }), "id"},
		{"id with space", with(func(u *User) { u.ID = "a b" }), "id"},
		{"id too long", with(func(u *User) { u.ID = strings.Repeat("x", MaxIDLen+1) }), "id"},
		{"id at the limit", with(func(u *User) { u.ID = strings.Repeat("x", MaxIDLen) }), ""},
		{"blank name", with(func(u *User) { u.Name = "  " }), "name"},
		{"name too long", with(func(u *User) { u.Name = strings.Repeat("é", MaxNameLen+1) }), "name"},
		{"name at the limit in runes", with(func(u *User) { u.Name = strings.Repeat("é", MaxNameLen) }), ""},
		{"invalid utf-8 name", with(func(u *User) { u.Name = "a\xffb" }), "name"},
		{"NUL in name", with(func(u *User) { u.Name = "a\x00b" }), "name"},
		{"NUL in email", with(func(u *User) { u.Email = "\"a\x00\"@example.com" }), "email"},
		{"malformed email", with(func(u *User) { u.Email = "not-an-email" }), "email"},
		{"empty email", with(func(u *User) { u.Email = "" }), "email"},
		{"display name", with(func(u *User) { u.Email = "Ada <ada@example.com>" }), "email"},
		{"untrimmed email", with(func(u *User) { u.Email = " ada@example.com" }), "email"},
	}
	for _, tt := range tests {
		err := tt.user.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("%s: err = %v, want a ValidationError on %q", tt.name, err, tt.field)
		}
		if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v should match ErrInvalid only", tt.name, err)
		}
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	got := Normalize(User{ID: " u1 ", Name: "  Ada ", Email: " Ada.L@Example.COM "})
	want := User{ID: "u1", Name: "Ada", Email: "Ada.L@example.com"}
	if got != want {
		t.Errorf("Normalize = %+v, want %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("normalized user is invalid: %v", err)
	}
}
