package lock

import (
	"context"
	"testing"
	"time"
)

// BenchmarkExecuteWithLock times one uncontended cycle on the in-process
// stand-ins (three miniredis masters over loopback pipes; the package's
// embedded etcd): the wrapper's own cost, without a network. The stack's
// servers and the anchor libraries are compared in bench/part06.
func BenchmarkExecuteWithLock(b *testing.B) {
	noop := func(context.Context, int64) error { return nil }
	_, clients := masters(b, 3)
	r, err := NewRedlock(clients, RedlockConfig{})
	if err != nil {
		b.Fatal(err)
	}
	e, err := NewEtcd(etcdClient(b), EtcdConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	for _, bb := range []struct {
		name string
		l    Locker
	}{{"backend=redlock-miniredis", r}, {"backend=etcd-embedded", e}} {
		b.Run(bb.name, func(b *testing.B) {
			res := uniqueName(b)
			b.ReportAllocs()
			for b.Loop() {
				if err := bb.l.ExecuteWithLock(b.Context(), res, 10*time.Second, noop); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
