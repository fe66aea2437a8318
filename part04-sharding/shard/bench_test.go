package shard

import (
	"context"
	"testing"
)

// BenchmarkRoute: one routing decision per strategy (the directory on its
// in-memory table; on PostgreSQL it is a round trip).
func BenchmarkRoute(b *testing.B) {
	ctx := context.Background()
	dir := NewDirectory(NewMemoryTable(), 3)
	keys := make([]int64, 1024)
	for i := range keys {
		keys[i] = int64(i)*7919 + 1
		if _, err := dir.Place(ctx, keys[i]); err != nil {
			b.Fatal(err)
		}
	}
	for _, r := range []Router{EvenRange(1, 1<<40, 3), Jump{N: 3}, Modulo{N: 3}, NewKeyRange(3), dir} {
		name := map[string]string{"*shard.Range": "range", "shard.Jump": "jump", "shard.Modulo": "modulo", "*shard.KeyRange": "keyrange", "*shard.Directory": "directory-memory"}[typeName(r)]
		b.Run("strategy="+name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := r.Route(ctx, keys[i&1023]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func typeName(r Router) string {
	switch r.(type) {
	case *Range:
		return "*shard.Range"
	case Jump:
		return "shard.Jump"
	case Modulo:
		return "shard.Modulo"
	case *KeyRange:
		return "*shard.KeyRange"
	case *Directory:
		return "*shard.Directory"
	}
	return "?"
}
