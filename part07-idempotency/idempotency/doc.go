// Package idempotency is net/http middleware that runs a POST or PATCH once
// per Idempotency-Key and answers every retry with the recorded response, over
// a pluggable Store (memstore, redisstore, pgstore; one contract suite in
// package contract checks all three).
//
// It keeps the article's design (claim the key atomically, run the handler,
// record status + headers + body, replay with X-Idempotent-Replayed: true;
// 409 while in progress, 422 for a different payload) and fixes what the
// article's middleware gets wrong:
//
//   - The key is scoped: the store key is (tenant, key), the tenant coming from
//     Config.Scope (by default the X-Tenant-ID header), so two clients that
//     pick the same key never see each other's responses.
//   - The fingerprint covers method, request target and body, so one key sent
//     to another endpoint is a 422, not a replay of the first endpoint's answer.
//   - The key is parsed as the IETF draft's sf-string (a bare token is accepted
//     too) and validated: 1 to 255 bytes of [A-Za-z0-9-_.~:+/=]; a missing key
//     on a route that requires one, a malformed or repeated key is a 400. The
//     request body is capped (413).
//   - The claim and the replay look-up are one store round trip (Claim), and
//     recording the response is a second; a replay costs one.
//   - A store that cannot answer is a 503 with Retry-After, and the handler does
//     not run. The article's middleware answers 409 "in progress" instead.
//     The 503 leaves the key claimable: a stalled store may still run the
//     claim it received once it wakes, so every claim carries its deadline,
//     the store refuses it past that deadline by its own clock, and the
//     middleware releases the claim's token once the deadline has passed.
//     The claim is sent on a context detached from the client, so a client
//     that hangs up mid-claim does not abandon a claim that then lands.
//   - The in-progress claim lives ClaimTTL (30 s), not the record's 24 h, and is
//     renewed every ClaimTTL/3 while the handler runs, so a long handler keeps
//     its claim and a crashed process frees the key within ClaimTTL. If the
//     claim cannot be renewed the handler's context is cancelled with
//     ErrClaimLost, at the latest when the claim may have expired in the
//     store, before another request can claim the key.
//   - A 5xx, a 429 or a panic releases the claim at once, so the retry runs the
//     handler again (Stripe instead replays a recorded 500 for 24 h; see
//     Config.Releases). The article caches the 5xx, and a panic leaves its key
//     "in-progress" for the whole 24 h.
//   - The handler runs on a context detached from the client's connection, and
//     the record is written with its own timeout: a client that times out (the
//     article's own sequence diagram) gets the recorded response on its retry.
//     The article writes the record with the request's context, which net/http
//     has cancelled by then, so the key stays "in-progress" for 24 h.
//   - Replays drop hop-by-hop headers, and the middleware's own errors are
//     application/problem+json, as in the draft's examples.
//
// What no middleware can do: make the handler's side effect and the record one
// atomic step. If the process dies after the side effect and before the record
// is written, the claim expires and a retry runs the handler again. The cure
// is a unique constraint on the idempotency key in the side effect's own
// database (package payments does this), the second tier of the article's
// Alipay case study.
//
// Usage:
//
//	mw, err := idempotency.New(idempotency.Config{Store: redisstore.New(rdb), Required: true})
//	if err != nil { … }
//	http.Handle("POST /payments", mw.Wrap(createPayment))
package idempotency
