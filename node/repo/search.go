package repo

import (
	"context"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/pieces/store"
	"github.com/ddc-project/ddc/search"
)

// Search searches the repo's own tag index: the files of the bucket of rec,
// or of no bucket when rec is nil. A private bucket's files need the
// owner's key in the keystore or a token that grants get, as reads do.
func (r *Repo) Search(ctx context.Context, rec *bucket.Record, token string, q search.Query, after []byte, limit int) (search.Page, error) {
	b := store.NoBucket
	if rec != nil {
		if rec.Private {
			if err := r.Authorize(*rec, bucket.OpGet, token); err != nil {
				return search.Page{}, err
			}
		}
		b = store.Bucket(rec.Bucket)
	}
	return r.Store.Search(ctx, b, q, after, limit)
}
