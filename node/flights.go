package node

import (
	"bytes"
	"context"
	"sync"

	"github.com/ipfs/go-cid"
)

// One fetch per piece. Reads of the same file at once (a player's
// overlapping range requests, several clients of a gateway) would each
// ask the holders for the same pieces: a read that shares (Reader.Share)
// joins a fetch of the piece in progress, and finds a piece another read
// fetched and has yet to commit to the store, instead of fetching again.
// Reads share only with reads that present the same credentials, so a
// piece fetched with a grant reaches only readers with that grant.

// sharedBytes bounds the fetched pieces kept for other reads until their
// reader commits them: past it the oldest go, and a read that wants one
// then fetches it again. A gateway response's window (16 chunks) is what
// an overlapping request of a player wants from another's fetches; more
// would be memory past the gateway's read-ahead bound, which 200 requests
// at once showed (64 MiB kept: +40 MiB of peak RSS).
const sharedBytes = 16 << 20

// flights are the pieces fetched or being fetched for shared reads.
type flights struct {
	mu    sync.Mutex
	m     map[string]*flight
	held  int       // bytes of the finished flights in m
	order []*flight // finished flights in m, oldest first
}

// flight is one fetch of a piece for readers with the same credentials.
type flight struct {
	key  string
	done chan struct{}
	// Set before done is closed; data is the piece's bytes, which
	// nobody writes again: every read of them shares them.
	data []byte
	err  error

	waiters int // reads that joined it (under flights.mu)
}

// flightKey names piece c fetched with creds.
func flightKey(c cid.Cid, in *In) string {
	var b bytes.Buffer
	b.WriteString(c.KeyString())
	if in != nil {
		b.Write(in.Bucket[:])
		if in.Guest {
			b.WriteByte('g')
		} else {
			b.WriteByte('o')
		}
		b.WriteString(in.Token) // last: nothing after it to run into
	}
	return b.String()
}

// join returns the flight of key and whether the caller leads it: a
// leader fetches the piece and ends the flight with finish, any other
// caller waits for it.
func (fs *flights) join(key string) (f *flight, leader bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[key]; f != nil {
		f.waiters++
		return f, false
	}
	if fs.m == nil {
		fs.m = make(map[string]*flight)
	}
	f = &flight{key: key, done: make(chan struct{})}
	fs.m[key] = f
	return f, true
}

// finish ends f with the leader's result, data being bytes nobody writes
// again (the leader's own copy, not a buffer it refills): a piece fetched stays for
// other reads until forget (its reader committed it) or until newer ones
// push it out; a failure goes at once, and the reads waiting fetch with
// their own holders, which need not be the leader's.
func (fs *flights) finish(f *flight, data []byte, err error) {
	f.data, f.err = data, err
	fs.mu.Lock()
	if err != nil {
		delete(fs.m, f.key)
	} else {
		fs.order = append(fs.order, f)
		fs.held += len(f.data)
		for fs.held > sharedBytes && len(fs.order) > 0 {
			fs.drop(fs.order[0])
		}
	}
	fs.mu.Unlock()
	close(f.done)
}

// drop removes the finished flight f. Called under mu.
func (fs *flights) drop(f *flight) {
	if fs.m[f.key] == f {
		delete(fs.m, f.key)
	}
	for i, o := range fs.order {
		if o == f {
			fs.order = append(fs.order[:i], fs.order[i+1:]...)
			fs.held -= len(f.data)
			return
		}
	}
}

// forget drops the finished flights of keys: their pieces are in the
// store now.
func (fs *flights) forget(keys []string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, k := range keys {
		if f := fs.m[k]; f != nil {
			select {
			case <-f.done:
				fs.drop(f)
			default: // a new fetch of it, by a read that began after the drop
			}
		}
	}
}

// wait waits for f and returns its piece, or the leader's failure: the
// flight's own bytes, to read only, when buf has no room to be filled
// (a shared read's), else a copy in buf, which its caller may write again.
func (f *flight) wait(ctx context.Context, buf []byte) ([]byte, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	if cap(buf) == 0 {
		return f.data, nil
	}
	return append(buf[:0], f.data...), nil
}
