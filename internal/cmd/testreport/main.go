// Command testreport reads `go test -json` on stdin, prints what a person needs
// (package results, the output of failed tests, every skip with its reason) and
// closes with one line "N passed, N failed, N skipped".
//
// With STACK_REQUIRED=1 a skipped test fails the run: `make test` promises that every
// integration test really ran, and a skip would hide a service that was not there.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	var passed, failed, skipped int
	var skips []string
	buf := map[string][]string{} // package/test -> output lines, printed only on failure
	failedPkgs := 0

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	for in.Scan() {
		var e event
		if err := json.Unmarshal(in.Bytes(), &e); err != nil {
			fmt.Print(in.Text() + "\n") // not JSON: a build error from go itself
			continue
		}
		key := e.Package + "/" + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Print(e.Output)
		case e.Test == "" && e.Action == "output":
			if o := strings.TrimSpace(e.Output); strings.HasPrefix(o, "ok") || strings.HasPrefix(o, "FAIL") ||
				strings.HasPrefix(o, "panic") || strings.HasPrefix(o, "---") || strings.Contains(o, "[no test files]") ||
				strings.Contains(o, "[build failed]") || strings.Contains(o, "setup failed") {
				if !strings.Contains(o, "[no test files]") && !strings.Contains(o, "[no tests to run]") {
					fmt.Print(e.Output)
				}
			}
		case e.Test == "" && e.Action == "fail":
			failedPkgs++
		case e.Test == "":
			// package-level pass, or skip meaning "no test files": not a test result
		case e.Action == "output":
			buf[key] = append(buf[key], e.Output)
		case e.Action == "pass":
			passed++
			delete(buf, key)
		case e.Action == "skip":
			skipped++
			reason := ""
			for _, l := range buf[key] {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "===") && !strings.HasPrefix(l, "--- SKIP") {
					reason = l
				}
			}
			skips = append(skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason))
			delete(buf, key)
		case e.Action == "fail":
			failed++
			fmt.Printf("--- FAIL: %s %s\n%s", e.Package, e.Test, strings.Join(buf[key], ""))
			delete(buf, key)
		}
	}
	for _, s := range skips {
		fmt.Println("SKIP", s)
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || failedPkgs > 0 {
		os.Exit(1)
	}
	if skipped > 0 && os.Getenv("STACK_REQUIRED") == "1" {
		fmt.Println("STACK_REQUIRED=1: every test must run; the skips above fail this run")
		os.Exit(1)
	}
}
