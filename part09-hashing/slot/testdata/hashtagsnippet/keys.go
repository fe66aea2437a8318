// Package hashtagsnippet has the shape of the article's hash-tag example, in a
// function body: two keys declared with :=, then the same two names declared
// again with := for their hash-tagged form, and neither used. It lives in
// testdata so the module never builds it; TestArticleHashTagSnippetDoesNotCompile
// type-checks it.
package hashtagsnippet

func orderKeys() {
	// untagged: each key hashes whole, so they land in different slots
	items := "order:42:items"
	audit := "order:42:audit"

	// tagged: both hash only "order:42", one slot
	items := "{order:42}:items"
	audit := "{order:42}:audit"
}
