package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
	"github.com/ddc-project/ddc/search"
)

// DefaultSearchTimeout is a search's budget across a bucket's holders:
// holders that have not answered by then are left out and the answer is
// marked partial. On a LAN they answer in milliseconds; the budget is for
// the far and the slow.
const DefaultSearchTimeout = 5 * time.Second

// SearchRequest is a search of a bucket (In; nil for the files of no
// bucket, which only this node's own index is asked about).
type SearchRequest struct {
	In      *In
	Terms   []string // as search.ParseTerm reads them
	Cursor  string   // from the previous answer; "" for the first page
	Limit   int      // search.DefaultLimit when 0
	Timeout time.Duration
}

// SearchAnswer is a page of results and how complete it is.
type SearchAnswer struct {
	Results  []search.Result
	Cursor   string // for the next page; "" when this is the last
	Holders  int    // other holders of the bucket found
	Answered int    // of them, those that answered in time
	Partial  bool   // a holder did not answer, or the search for holders ran out of time
	Failures []HolderFailure
}

// HolderFailure is why a holder's answer is missing.
type HolderFailure struct {
	Peer  peer.ID
	Error string
}

// parsed is a request checked and read: its query, the sort key its
// cursor continues after, its scope (a bucket's ID or "") and its limit.
type parsed struct {
	q     search.Query
	after []byte
	scope string
	limit int
}

func (req SearchRequest) parse() (parsed, error) {
	p := parsed{limit: req.Limit}
	if p.limit == 0 {
		p.limit = search.DefaultLimit
	}
	if p.limit < 1 || p.limit > search.MaxLimit {
		return p, fmt.Errorf("%w: limit %d out of [1, %d]", search.ErrBadQuery, req.Limit, search.MaxLimit)
	}
	if req.Timeout < 0 {
		return p, fmt.Errorf("%w: negative timeout %v", search.ErrBadQuery, req.Timeout)
	}
	var err error
	if p.q, err = search.Parse(req.Terms); err != nil {
		return p, err
	}
	if req.In != nil {
		p.scope = req.In.Bucket.String()
	}
	p.after, err = search.DecodeCursor(p.scope, p.q, req.Cursor)
	return p, err
}

// answer makes the answer of merged pages.
func (p parsed) answer(pages []search.Page) SearchAnswer {
	m := search.Merge(p.q, p.after, p.limit, pages)
	a := SearchAnswer{Results: m.Results}
	if m.More && m.Last != nil {
		a.Cursor = search.EncodeCursor(p.scope, p.q, m.Last)
	}
	return a
}

// SearchRepo searches a repo's own index, as a node that asks no one
// else: what the CLI does with no daemon running. A bucket must have its
// record kept in the repo.
func SearchRepo(ctx context.Context, r *repo.Repo, req SearchRequest) (SearchAnswer, error) {
	p, err := req.parse()
	if err != nil {
		return SearchAnswer{}, err
	}
	var rec *bucket.Record
	var token string
	if req.In != nil {
		bs, err := repo.Buckets(r.Path)
		if err != nil {
			return SearchAnswer{}, err
		}
		kept, err := bs.Get(req.In.Bucket)
		if err != nil {
			return SearchAnswer{}, err
		}
		rec, token = &kept, req.In.Token
	}
	page, err := r.Search(ctx, rec, token, p.q, p.after, p.limit)
	if err != nil {
		return SearchAnswer{}, err
	}
	return p.answer([]search.Page{page}), nil
}

// Search searches this node's index and, for a bucket, every holder of
// the bucket it finds in the DHT, in parallel within the request's time
// budget, and merges what they answer. A guest's search of this node's
// index follows the access rule (mayReadBucket); the operator's needs
// the owner's key or a grant for a private bucket, as offline.
func (n *Node) Search(ctx context.Context, req SearchRequest) (SearchAnswer, error) {
	if !req.In.inBucket() {
		return SearchRepo(ctx, n.repo, req)
	}
	p, err := req.parse()
	if err != nil {
		return SearchAnswer{}, err
	}
	pr, err := n.present(ctx, req.In)
	if err != nil {
		return SearchAnswer{}, err
	}
	rec := pr.rec
	var local search.Page
	if req.In.Guest {
		if err = n.mayReadBucket(ctx, req.In.reader(), rec.Bucket, pr.creds); err == nil {
			local, err = n.repo.Store.Search(ctx, store.Bucket(rec.Bucket), p.q, p.after, p.limit)
		}
	} else {
		local, err = n.repo.Search(ctx, &rec, req.In.Token, p.q, p.after, p.limit)
	}
	if err != nil {
		return SearchAnswer{}, err
	}
	timeout := req.Timeout
	if timeout == 0 {
		timeout = DefaultSearchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sreq := search.NewRequest(rec.Bucket[:], pr.grant.Token, p.q, p.after, p.limit)
	sreq.Guest = req.In.Guest

	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		pages    = []search.Page{local}
		failures []HolderFailure
		seen     = map[peer.ID]bool{n.host.ID(): true}
	)
	n.waitRouting(ctx)
	for ai := range n.dht.FindProviders(ctx, bucket.HoldersKey(rec.Bucket), 0) {
		if seen[ai.ID] {
			continue
		}
		seen[ai.ID] = true
		if len(ai.Addrs) > 0 {
			n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
		}
		wg.Go(func() {
			r := sreq
			var err error
			if pr.grant.Prove != nil && len(r.Token) > 0 {
				r.Proof, err = pr.grant.Prove(ai.ID)
			}
			var page search.Page
			if err == nil {
				page, err = search.Ask(ctx, n.host, n.Cluster(), ai.ID, r)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, HolderFailure{Peer: ai.ID, Error: err.Error()})
				return
			}
			pages = append(pages, page)
		})
	}
	lookupCut := ctx.Err() != nil
	wg.Wait()
	a := p.answer(pages)
	a.Holders = len(seen) - 1
	a.Answered = len(pages) - 1
	a.Failures = failures
	a.Partial = lookupCut || len(failures) > 0
	if a.Partial {
		n.log.Info("search partial", "bucket", rec.Bucket, "holders", a.Holders, "answered", a.Answered, "lookup cut", lookupCut)
	}
	return a, nil
}

// startSearch answers the search protocol from the node's index, under
// the access rule of reads.
func (n *Node) startSearch() {
	index := func(ctx context.Context, b []byte, q search.Query, after []byte, limit int) (search.Page, error) {
		return n.repo.Store.Search(ctx, store.Bucket(b), q, after, limit)
	}
	n.search = search.NewServer(n.host, n.Cluster(), index, n.searchAccess, n.log)
}

// Newest finds the newest file of the bucket in with the file-path tag p
// (see search.Newest), asking the bucket's holders as Search does. A path
// no file has is an error wrapping pieces.ErrNotFound.
func (n *Node) Newest(ctx context.Context, in *In, p string) (cid.Cid, error) {
	req := SearchRequest{In: in, Terms: []string{pieces.TagFilePath + "=" + p}, Limit: search.MaxLimit}
	var newest search.Newest
	for {
		a, err := n.Search(ctx, req)
		if err != nil {
			return cid.Undef, err
		}
		for _, r := range a.Results {
			newest.Add(r.CID, r.Tags)
		}
		if a.Cursor == "" {
			if !newest.Best().Defined() {
				partial := ""
				if a.Partial {
					partial = " (some holders did not answer)"
				}
				return cid.Undef, fmt.Errorf("%w: no file with path %q in bucket %s%s", pieces.ErrNotFound, p, in.Bucket, partial)
			}
			return newest.Best(), nil
		}
		req.Cursor = a.Cursor
	}
}
