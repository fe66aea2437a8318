package fleet

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sysdesign-masterclass/golang/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func do(c *http.Client, method, url, body string) (http.Header, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.Header, string(b), err
}

// A backend answers with its name, counts hits per method, serves sized
// bodies, drops requests on demand, and survives Kill + Restart on the
// same address.
func TestBackendLifecycle(t *testing.T) {
	bs, err := StartN(2, Options{})
	require.NoError(t, err)
	defer CloseAll(bs)
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	b := bs[0]
	url := "http://" + b.Addr()

	hdr, body, err := do(c, "PUT", url+"/x", "12345")
	require.NoError(t, err)
	assert.Equal(t, "b1\n", body)
	assert.Equal(t, "b1", hdr.Get(Header))
	assert.Equal(t, "5", hdr.Get("X-Body-Bytes"))
	_, body, err = do(c, "GET", url+"/x?size=100000", "")
	require.NoError(t, err)
	assert.Len(t, body, 100000)
	_, body, err = do(c, "GET", url+"/healthz", "")
	require.NoError(t, err)
	assert.Equal(t, "ok\n", body)
	assert.Equal(t, int64(1), b.Hits("PUT"))
	assert.Equal(t, int64(2), b.Hits(""), "health checks are not hits")

	b.SetDrop(true)
	_, _, err = do(c, "POST", url+"/x", "")
	assert.Error(t, err, "closed without an answer")
	assert.Equal(t, int64(1), b.Hits("POST"))
	b.SetDrop(false)

	addr := b.Addr()
	b.Kill()
	_, _, err = do(c, "GET", url+"/x", "")
	assert.ErrorContains(t, err, "connection refused")
	require.NoError(t, b.Restart())
	_, _, err = do(c, "GET", url+"/x", "")
	require.NoError(t, err)
	assert.Equal(t, addr, b.Addr())
	assert.ErrorContains(t, b.Restart(), "is running")
}

// Workers cap concurrency: with one worker and a 50 ms delay, two requests
// sent together take about 100 ms, not 50.
func TestWorkersQueue(t *testing.T) {
	b, err := Start("w", Options{Delay: 50 * time.Millisecond, Workers: 1})
	require.NoError(t, err)
	defer b.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	start := time.Now()
	done := make(chan error, 2)
	for range 2 {
		go func() { _, _, err := do(c, "GET", "http://"+b.Addr()+"/", ""); done <- err }()
	}
	require.NoError(t, <-done)
	require.NoError(t, <-done)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "the second waited for the worker")
}
