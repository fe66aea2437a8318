package reshard

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
	"github.com/sysdesign-masterclass/golang/internal/stack"
	"github.com/sysdesign-masterclass/golang/part04-sharding/pgshard"
)

// TestMain runs the tests, or, with RESHARD_CHILD set, is the resharding
// process the fault tests kill: it resumes the resharding recorded in the
// catalog named by RESHARD_DBS (catalog,shard0,shard1,...) and prints every
// step on a line of its own.
func TestMain(m *testing.M) {
	if dbs := os.Getenv("RESHARD_CHILD"); dbs != "" {
		os.Exit(child(dbs))
	}
	leakcheck.VerifyTestMain(m)
}

func child(dbs string) int {
	ctx := context.Background()
	names := strings.Split(dbs, ",")
	o := &Online{Names: names[1:], Batch: 50, Pause: 20 * time.Millisecond}
	for i, name := range names {
		p, err := pgshard.Pool(ctx, stack.DatabaseURL(), name, 4)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		if i == 0 {
			o.Catalog = p
		} else {
			o.Shards = append(o.Shards, p)
		}
	}
	hold := os.Getenv("RESHARD_CHILD_HOLD")
	o.Progress = func(e Event) {
		fmt.Printf("%s shard=%d n=%d\n", e.Phase, e.Shard, e.N)
		if e.Phase == hold && e.N > 0 {
			fmt.Println("holding")
			select {} // wait here for the parent's SIGKILL
		}
	}
	rep, err := o.Run(ctx)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Printf("report copied=%d applied=%d deleted=%d\n", rep.Copied, rep.Applied, rep.Deleted)
	return 0
}
