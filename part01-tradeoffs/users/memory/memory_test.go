package memory_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/contract"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/domain"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/memory"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/port"
)

func TestContract(t *testing.T) {
	contract.Run(t, func(*testing.T) port.UserRepository { return memory.New() })
}

// Each New is its own store: the demo and the tests rely on that when they
// create one per run or per subtest.
func TestRepositoriesAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := memory.New(), memory.New()
	require.NoError(t, a.Save(t.Context(), &domain.User{ID: "ada", Name: "Ada", Email: "ada@example.com"}))
	_, err := b.FindByID(t.Context(), "ada")
	require.ErrorIs(t, err, domain.ErrNotFound)
}
