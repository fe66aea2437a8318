//go:build !race

package stampede

// raceEnabled: the test binary was built with -race.
const raceEnabled = false
