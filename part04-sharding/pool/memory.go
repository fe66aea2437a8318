package pool

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Memory is one backend's memory, as the kernel and PostgreSQL see it.
type Memory struct {
	PID int
	// From /proc/<pid>/smaps_rollup, in bytes; zero when the backend is not
	// a process of this machine (PostgreSQL in a container or elsewhere).
	Visible          bool
	RSS, PSS, USS    int64 // resident; proportional share; private (clean + dirty), what closing it frees
	SharedResident   int64 // resident pages shared with other processes (shared_buffers, libraries)
	Contexts, CtxUse int64 // pg_backend_memory_contexts: allocated and used bytes
}

// Backend measures the backend serving conn. It finds the process through
// pg_backend_pid() and checks that /proc/<pid>/cmdline names conn's own
// client port before reading it (root, or the postgres user, can).
func Backend(ctx context.Context, conn *pgx.Conn) (Memory, error) {
	var m Memory
	err := conn.QueryRow(ctx, `SELECT pg_backend_pid(), sum(total_bytes)::bigint, sum(used_bytes)::bigint FROM pg_backend_memory_contexts`).
		Scan(&m.PID, &m.Contexts, &m.CtxUse)
	if err != nil {
		return m, fmt.Errorf("pool: backend memory contexts: %w", err)
	}
	local, ok := conn.PgConn().Conn().LocalAddr().(*net.TCPAddr)
	if !ok {
		return m, nil
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", m.PID))
	if err != nil || !strings.Contains(string(cmd), fmt.Sprintf("(%d)", local.Port)) {
		return m, nil // not our backend's process: another pid namespace or machine
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", m.PID))
	if err != nil {
		return m, nil
	}
	defer f.Close()
	kb := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 2 && fields[1] == "kB" {
			n, _ := strconv.ParseInt(fields[0], 10, 64)
			kb[k] = n * 1024
		}
	}
	m.Visible = true
	m.RSS, m.PSS = kb["Rss"], kb["Pss"]
	m.USS = kb["Private_Clean"] + kb["Private_Dirty"]
	m.SharedResident = kb["Shared_Clean"] + kb["Shared_Dirty"]
	return m, sc.Err()
}
