// Package articlehandlers has the shape of the article's leakyHandler and
// fixedHandler, in this project's words: a package clause and the two
// handlers, using a result type and a work function the article never
// defines and packages it never imports. It lives in testdata so the module
// never builds it; TestArticleHandlerSnippetsDoNotCompile type-checks it.
package articlehandlers

func leaking(w http.ResponseWriter, r *http.Request) {
	out := make(chan answer)
	go func() { out <- slowLookup() }()
	select {
	case a := <-out:
		w.Write(a.body)
	case <-time.After(time.Second):
		http.Error(w, "timeout", http.StatusGatewayTimeout)
	}
}

func patched(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	out := make(chan answer, 1)
	go func() {
		select {
		case out <- slowLookup():
		case <-ctx.Done():
		}
	}()
	select {
	case a := <-out:
		w.Write(a.body)
	case <-ctx.Done():
		http.Error(w, "timeout", http.StatusGatewayTimeout)
	}
}
