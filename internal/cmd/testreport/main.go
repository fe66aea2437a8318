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
	"io"
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

func main() { os.Exit(report(os.Stdin, os.Stdout, os.Getenv("STACK_REQUIRED") == "1")) }

// report prints the summary of the `go test -json` stream r to w and returns
// the exit code: 1 if a test or a package failed, or (stackRequired) skipped.
func report(r io.Reader, w io.Writer, stackRequired bool) int {
	var passed, failed, skipped int
	var skips []string
	buf := map[string][]string{} // package/test -> output lines, printed only on failure
	failedPkgs := 0
	testFailed := map[string]bool{} // packages with a failed test (whose output was printed)

	in := bufio.NewScanner(r)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	for in.Scan() {
		var e event
		if err := json.Unmarshal(in.Bytes(), &e); err != nil {
			fmt.Fprint(w, in.Text()+"\n") // not JSON: a build error from go itself
			continue
		}
		key := e.Package + "/" + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Test == "" && e.Action == "output":
			// Kept whole: a package can fail outside any test (TestMain's leak
			// check, a race after the last test, os.Exit), and then this output is
			// all there is to say why.
			buf[key] = append(buf[key], e.Output)
			if o := strings.TrimSpace(e.Output); strings.HasPrefix(o, "ok") || strings.HasPrefix(o, "FAIL") ||
				strings.HasPrefix(o, "panic") || strings.HasPrefix(o, "---") || strings.Contains(o, "[no test files]") ||
				strings.Contains(o, "[build failed]") || strings.Contains(o, "setup failed") {
				if !strings.Contains(o, "[no test files]") && !strings.Contains(o, "[no tests to run]") {
					fmt.Fprint(w, e.Output)
				}
			}
		case e.Test == "" && e.Action == "fail":
			failedPkgs++
			if !testFailed[e.Package] {
				fmt.Fprintf(w, "--- FAIL: %s (outside any test; its output follows)\n%s", e.Package, strings.Join(buf[key], ""))
			}
			delete(buf, key)
		case e.Test == "" && (e.Action == "pass" || e.Action == "skip"):
			delete(buf, key) // package-level pass, or skip meaning "no test files": not a test result
		case e.Test == "":
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
			testFailed[e.Package] = true
			fmt.Fprintf(w, "--- FAIL: %s %s\n%s", e.Package, e.Test, strings.Join(buf[key], ""))
			delete(buf, key)
		}
	}
	for _, s := range skips {
		fmt.Fprintln(w, "SKIP", s)
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || failedPkgs > 0 {
		return 1
	}
	if skipped > 0 && stackRequired {
		fmt.Fprintln(w, "STACK_REQUIRED=1: every test must run; the skips above fail this run")
		return 1
	}
	return 0
}
