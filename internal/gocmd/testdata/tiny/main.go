// Command tiny imports a package of its own module and nothing outside the
// standard library.
package main

import (
	"fmt"

	"example.com/tiny/sub"
)

func main() { fmt.Println(sub.Answer) }
