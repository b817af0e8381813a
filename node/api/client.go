package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

// ErrNoDaemon means no node is running on the repo: the caller works
// offline.
var ErrNoDaemon = errors.New("no running node")

// pingTimeout bounds finding out whether the API in node.json answers.
const pingTimeout = 2 * time.Second

// Client talks to a node's API.
type Client struct {
	base string
	hc   *http.Client
	sock string // the node's copy socket; empty when it has none
	// secret is the repo's API secret, sent with every request: an API
	// beyond loopback asks for it.
	secret string

	bucket, token string // see In
}

// TokenHeader carries a grant token with a request; a URL would leave it
// in logs and histories.
const TokenHeader = "X-Ddc-Token"

// In returns a client whose puts, reads and listings work in bucket (its
// text ID) with token, a grant for it (empty: none; the node may issue
// one itself with the owner's key).
func (c *Client) In(bucket, token string) *Client {
	cc := *c
	cc.bucket, cc.token = bucket, token
	return &cc
}

// Find returns a client of the node running on the repo at path, or
// ErrNoDaemon when none is: no node.json, or one left by a node that was
// killed (its API does not answer).
func Find(ctx context.Context, path string) (*Client, error) {
	st, err := repo.ReadState(path)
	if err != nil {
		return nil, ErrNoDaemon
	}
	c := New(st.API)
	c.sock = st.Socket
	c.secret, _ = repo.APISecret(path) // a repo from before secrets has none; a loopback API asks none
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := c.ID(ctx); err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			return nil, err // something answers, and says no
		}
		return nil, ErrNoDaemon
	}
	return c, nil
}

// New returns a client of the API at addr (host:port).
func New(addr string) *Client {
	return &Client{base: "http://" + addr + "/api/v1", hc: &http.Client{Transport: &http.Transport{DisableCompression: true}}}
}

// do sends a request and returns the response when its status is 200,
// the node's error otherwise.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, size int64) (*http.Response, error) {
	u := c.base + path
	if c.bucket != "" {
		q = maps.Clone(q)
		if q == nil {
			q = url.Values{}
		}
		q.Set("bucket", c.bucket)
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set(TokenHeader, c.token)
	}
	if c.secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.secret)
	}
	if body != nil && size >= 0 {
		req.ContentLength = size
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node API %s: %w", c.base, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, &Error{Code: CodeForbid, Message: fmt.Sprintf("node API %s refused the request: it asks for the repo's API secret, and this repo's (api.secret) is not it", c.base)}
	}
	var e Error
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e); err != nil || e.Message == "" {
		return nil, fmt.Errorf("node API %s %s: %s", method, path, resp.Status)
	}
	return nil, &e
}

func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	return c.callJSON(ctx, http.MethodGet, path, q, v)
}

// callJSON makes a request without a body and decodes its JSON reply.
func (c *Client) callJSON(ctx context.Context, method, path string, q url.Values, v any) error {
	resp, err := c.do(ctx, method, path, q, nil, -1)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("node API %s: bad reply: %w", path, err)
	}
	return nil
}

// ID describes the node.
func (c *Client) ID(ctx context.Context) (ID, error) {
	var id ID
	return id, c.getJSON(ctx, "/id", nil, &id)
}

// Peers lists the connected peers.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var ps []Peer
	return ps, c.getJSON(ctx, "/peers", nil, &ps)
}

// Connect dials the peer at addr.
func (c *Client) Connect(ctx context.Context, addr string) (Peer, error) {
	var p Peer
	return p, c.callJSON(ctx, http.MethodPost, "/connect", url.Values{"addr": {addr}}, &p)
}

// Providers calls fn for each holder of k the DHT finds within timeout.
func (c *Client) Providers(ctx context.Context, k cid.Cid, timeout time.Duration, fn func(Peer) error) error {
	resp, err := c.do(ctx, http.MethodGet, "/providers/"+k.String(), url.Values{"timeout": {timeout.String()}}, nil, -1)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var p Peer
		if err := dec.Decode(&p); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("node API providers: %w", err)
		}
		if err := fn(p); err != nil {
			return err
		}
	}
}

// Put streams body (size bytes, -1 when unknown) to the node as a file.
func (c *Client) Put(ctx context.Context, body io.Reader, size int64, opt pieces.BuildOptions) (PutResult, error) {
	resp, err := c.do(ctx, http.MethodPost, "/put", EncodePutOptions(opt), body, size)
	if err != nil {
		return PutResult{}, err
	}
	defer resp.Body.Close()
	var res PutResult
	return res, json.NewDecoder(resp.Body).Decode(&res)
}

// Cat is a file's bytes arriving from the node.
type Cat struct {
	Size     int64 // the whole file's size
	Length   int64 // bytes in this response
	Download uint64
	resp     *http.Response
	read     int64
}

// Cat asks for length bytes (-1: to the end) of k from offset. With pin,
// the node pins the file once it was read whole.
func (c *Client) Cat(ctx context.Context, k cid.Cid, offset, length int64, pin bool) (*Cat, error) {
	q := url.Values{"offset": {strconv.FormatInt(offset, 10)}, "length": {strconv.FormatInt(length, 10)}}
	method := http.MethodGet
	if pin { // pinning changes state: POST only
		q.Set("pin", "true")
		method = http.MethodPost
	}
	resp, err := c.do(ctx, method, "/cat/"+k.String(), q, nil, -1)
	if err != nil {
		return nil, err
	}
	size, err1 := strconv.ParseInt(resp.Header.Get("X-Ddc-Size"), 10, 64)
	dl, err2 := strconv.ParseUint(resp.Header.Get("X-Ddc-Download"), 10, 64)
	n, err3 := strconv.ParseInt(resp.Header.Get("X-Ddc-Length"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("node API cat %s: reply without its size headers", k)
	}
	return &Cat{Size: size, Length: n, Download: dl, resp: resp}, nil
}

// Read reads the body; at its end it reports an error the node sent after
// the bytes began, or a body cut short.
func (r *Cat) Read(p []byte) (int, error) {
	n, err := r.resp.Body.Read(p)
	r.read += int64(n)
	if err == io.EOF {
		t := r.resp.Trailer
		switch {
		case t.Get("X-Ddc-Error") != "":
			return n, &Error{Code: t.Get("X-Ddc-Error-Code"), Message: t.Get("X-Ddc-Error")}
		case t.Get("X-Ddc-Done") != "true" || r.read != r.Length:
			return n, fmt.Errorf("node ended the response after %d of %d bytes", r.read, r.Length)
		}
	} else if err != nil {
		err = fmt.Errorf("reading from node: %w", err)
	}
	return n, err
}

// Close ends the response.
func (r *Cat) Close() error { return r.resp.Body.Close() }

// Serving is how many remote holders sent pieces, once the body was read
// to its end.
func (r *Cat) Serving() int {
	n, _ := strconv.Atoi(r.resp.Trailer.Get("X-Ddc-Serving"))
	return n
}

// CanCopy reports whether the node takes an output file over its copy
// socket (see CopyTo).
func (c *Client) CanCopy() bool { return c.sock != "" }

// Downloads lists the node's downloads in progress.
func (c *Client) Downloads(ctx context.Context) ([]Download, error) {
	var ds []Download
	return ds, c.getJSON(ctx, "/downloads", nil, &ds)
}

// Stat describes the file k.
func (c *Client) Stat(ctx context.Context, k cid.Cid) (Stat, error) {
	var st Stat
	return st, c.getJSON(ctx, "/stat/"+k.String(), nil, &st)
}

// Ls lists the pinned files.
func (c *Client) Ls(ctx context.Context) ([]File, error) {
	var fs []File
	return fs, c.getJSON(ctx, "/ls", nil, &fs)
}
