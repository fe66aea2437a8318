package domain

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	valid := User{ID: "ada-1", Name: "Ada Lovelace", Email: "ada@example.com"}
	with := func(f func(*User)) *User { u := valid; f(&u); return &u }
	// email254 is exactly RFC 5321's limit: a 64-byte local part, '@', and a
	// 189-byte domain of labels no longer than 63 bytes.
	email254 := strings.Repeat("l", 64) + "@" + strings.Repeat("d", 63) + "." + strings.Repeat("d", 63) + "." + strings.Repeat("d", 57) + ".com"
	require.Len(t, email254, MaxEmailLen)
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
		{"email at the RFC 5321 limit", with(func(u *User) { u.Email = email254 }), ""},
		{"email one byte over", with(func(u *User) { u.Email = "l" + email254 }), "email"},
		{"60 KB email", with(func(u *User) { u.Email = strings.Repeat("a", 60<<10) + "@example.com" }), "email"},
		{"local part over 64 bytes", with(func(u *User) { u.Email = strings.Repeat("l", 65) + "@example.com" }), "email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.user.Validate()
			if tt.field == "" {
				assert.NoError(t, err)
				return
			}
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.field, ve.Field)
			assert.ErrorIs(t, err, ErrInvalid)
			assert.NotErrorIs(t, err, ErrNotFound)
			assert.Less(t, len(err.Error()), 400, "the message must not echo a huge input")
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	got := Normalize(User{ID: " u1 ", Name: "  Ada ", Email: " Ada.L@Example.COM "})
	assert.Equal(t, User{ID: "u1", Name: "Ada", Email: "Ada.L@example.com"}, got)
	assert.NoError(t, got.Validate())
}
