package memory_test

import (
	"testing"

	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/contract"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/memory"
	"github.com/sysdesign-masterclass/golang/part01-tradeoffs/users/port"
)

func TestContract(t *testing.T) {
	contract.Run(t, func(*testing.T) port.UserRepository { return memory.New() })
}
