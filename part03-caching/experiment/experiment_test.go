package experiment

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func standIns(t *testing.T) *Env {
	t.Helper()
	e, err := Connect(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	if e.RealRedis || e.RealPostgres {
		t.Fatal("Connect(false) used the stack")
	}
	return e
}

func TestStampedeExperiment(t *testing.T) {
	e := standIns(t)
	cfg := StampedeConfig{Burst: 300, Trickle: 60, TTL: 300 * time.Millisecond, BackendLatency: 30 * time.Millisecond}
	rows, err := e.RunStampede(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	PrintStampede(&buf, cfg, rows)
	t.Log("\n" + buf.String())
	calls := map[string]int64{}
	for _, r := range rows {
		if r.Errors != 0 {
			t.Errorf("%s: %d errors", r.Name, r.Errors)
		}
		name := r.Name
		if strings.HasPrefix(name, "tiered") {
			name = "tiered"
		}
		calls[name] = r.BackendCalls
	}
	// Singleflight alone: the burst shares one recompute. (Trickle requests all come
	// before expiry, so none of them recompute.)
	if calls["singleflight"] != 1 {
		t.Errorf("singleflight: %d backend calls, want 1", calls["singleflight"])
	}
	if calls["plain TTL"] < 10 {
		t.Errorf("plain TTL: %d backend calls for a burst of %d; the stampede did not happen", calls["plain TTL"], cfg.Burst)
	}
	if calls["XFetch + singleflight"] < 1 || calls["XFetch + singleflight"] > 2 {
		t.Errorf("XFetch + singleflight: %d backend calls, want 1 (2 if a refresh lands right at expiry)", calls["XFetch + singleflight"])
	}
	if calls["tiered"] != 0 {
		t.Errorf("tiered: %d backend calls; L2 outlives L1, so the burst must never reach the backend", calls["tiered"])
	}
}

func TestShopeeExperiment(t *testing.T) {
	e := standIns(t)
	cfg := ShopeeConfig{Requests: 3000, Pods: 4, Spike: 200 * time.Millisecond, L1TTL: time.Second, Workers: 64}
	res, err := e.RunShopee(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	PrintShopee(&buf, res)
	t.Log("\n" + buf.String())
	if res.BaselineGETs != int64(cfg.Requests) {
		t.Errorf("baseline GETs = %d, want one per request (%d)", res.BaselineGETs, cfg.Requests)
	}
	// Every L1 entry lives ≥ 0.9 s (10% jitter) and the spike lasts 0.2 s: one fill per pod.
	if res.TieredGETs != int64(cfg.Pods) {
		t.Errorf("tiered GETs = %d, want one per pod (%d)", res.TieredGETs, cfg.Pods)
	}
	if res.BackendCalls != 0 || res.Errors != 0 {
		t.Errorf("backend calls %d, errors %d", res.BackendCalls, res.Errors)
	}
	if want := 1 - float64(cfg.Pods)/float64(cfg.Requests); res.Reduction != want {
		t.Errorf("reduction %v, want %v", res.Reduction, want)
	}
	if !strings.Contains(buf.String(), "99.980%") {
		t.Errorf("the article's figure, computed from its inputs, is missing:\n%s", buf.String())
	}
}
