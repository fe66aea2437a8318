package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The demo must run to completion on a fresh clone, with no services.
func TestRunAllWithoutServices(t *testing.T) {
	var out bytes.Buffer
	start := time.Now()
	if err := run(t.Context(), []string{"-store", "memory"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	// Generous bound: the brief promises "well under 10 s"; it takes about 1 s.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("demo took %v", d)
	}
	for _, want := range []string{
		"99.7003%", "26.25 h", `"~2.6 hours"`, // the erratum, computed beside the claim
		"99.9999%", "31.5 s",
		"99.989998%",           // per-service need for 99.95% over 5
		"10,000 of 10,000,000", // error budget in requests
		"dominant: system/dns",
		"PA/EL", "PC/EC",
		"STALE: the last acknowledged write was v1",
		"conflict on x: kept v2 (#2@n2), lost v1 (#2@n1)",
		"no quorum",
		"storage: in-memory adapter (-store memory)",
		`{"id":"demo-ada","name":"Ada Lovelace","email":"ada@example.com"}`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, status := range []string{"  200  ", "  404  ", "  400  ", "  405  "} {
		if !strings.Contains(out.String(), status) {
			t.Errorf("users demo printed no %s response", strings.TrimSpace(status))
		}
	}
}

func TestRunOneMode(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(t.Context(), []string{"-mode", m.name, "-store", "memory"}, &out); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(out.String(), "\n== "); n > 1 && m.name != "availability" {
				t.Errorf("-mode %s printed %d sections, want 1:\n%s", m.name, n, out.String())
			}
			if m.name != "users" && strings.Contains(out.String(), "storage:") {
				t.Errorf("-mode %s ran the users demo", m.name)
			}
		})
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"-mode", "nope"},
		{"-store", "nope", "-mode", "users"},
		{"stray"},
		{"-bogus"},
	} {
		if err := run(t.Context(), args, io.Discard); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
	var help bytes.Buffer
	if err := run(t.Context(), []string{"-h"}, &help); err != nil {
		t.Errorf("-h: %v", err)
	}
	for _, want := range []string{"all | availability | pacelc | partition | users", "-serve", "-store"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h output lacks %q:\n%s", want, help.String())
		}
	}
}

// lines is an io.Writer that hands each write to the test as it happens.
type lines chan string

func (l lines) Write(p []byte) (int, error) { l <- string(p); return len(p), nil }

// TestServeStopsOnCancel plays Ctrl-C: the server answers, then returns nil
// once its context ends, leaving no goroutine behind.
func TestServeStopsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := make(lines, 16)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-serve", "127.0.0.1:0", "-store", "memory"}, out) }()

	var addr string
	for addr == "" {
		select {
		case line := <-out:
			if _, rest, ok := strings.Cut(line, "serving the users API on "); ok {
				addr, _, _ = strings.Cut(rest, " ")
			}
		case err := <-done:
			t.Fatalf("server exited early: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("server did not say where it listens")
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest("PUT", addr+"/users/ada", strings.NewReader(`{"name":"Ada","email":"ada@example.com"}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT via the served API = %d", resp.StatusCode)
	}
	resp, err = client.Get(addr + "/users/ada")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"name":"Ada"`) {
		t.Fatalf("GET via the served API = %d %s", resp.StatusCode, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	for {
		select {
		case line := <-out:
			if strings.Contains(line, "stopped") {
				return
			}
		default:
			t.Fatal(`serve did not print "stopped"`)
		}
	}
}
