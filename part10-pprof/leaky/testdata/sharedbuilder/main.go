// Command sharedbuilder has the shape of the article's case-study bug: one
// strings.Builder for the server's lifetime, written by every request. Two
// requests at once are two goroutines appending to it with no lock.
// TestArticleSharedBuilderIsADataRace runs it with -race.
package main

import (
	"fmt"
	"strings"
	"sync"
)

var seen strings.Builder // created with the server, never reset

func record(path string) { seen.WriteString(path) }

func main() {
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			for j := range 1000 {
				record(fmt.Sprintf("/api/%d/%d", i, j))
			}
		})
	}
	wg.Wait()
	fmt.Println(seen.Len())
}
