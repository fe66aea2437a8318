package lock

// childMain runs a child process of a cross-process test when the environment
// asks for one; ok is false in an ordinary test run.
func childMain() (code int, ok bool) { return 0, false }
