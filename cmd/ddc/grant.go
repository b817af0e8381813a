package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node/repo"
)

// defaultGrantLife is how long a grant lives unless --expires says.
const defaultGrantLife = 30 * 24 * time.Hour

func newBucketGrantCmd(e *env) *cobra.Command {
	var to, ops, expires, keyName, from string
	var bearer, delegate bool
	c := &cobra.Command{
		Use:   "grant ID (--to KEY | --bearer) --ops get,put,delete",
		Short: "Print a token that grants operations on a bucket",
		Long: `Print a grant token (ddct1...): signed by the bucket's owner, or with
--from by the holder of a delegable grant, which then issues a narrower one
(a subset of its operations, expiring no later). --to names the key the
grant is for: a public key (did:key:z6Mk...), a node's peer ID (the grant is
then honoured for that node's own requests, never for a gateway client) or a
key of this repo's keystore by name. A --bearer grant is to a key made for
it, whose secret the token carries: whoever holds the token can read with
it, through the CLI or a gateway (keep it secret). Nodes the grant is
presented to see only its public part and a proof made for each of them,
which none can reuse.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := bucket.ParseID(args[0])
			if err != nil {
				return usageErr(err)
			}
			if bearer == (to != "") {
				return usageErr(errors.New("bucket grant: give one of --to KEY and --bearer"))
			}
			o, err := bucket.ParseOps(ops)
			if err != nil {
				return usageErr(fmt.Errorf("--ops: %w", err))
			}
			life, err := parseLife(expires)
			if err != nil {
				return usageErr(fmt.Errorf("--expires: %w", err))
			}
			var subject *bucket.PublicKey
			if to != "" {
				k, err := e.account(to)
				if err != nil {
					return err
				}
				subject = &k
			}
			now := time.Now()
			var t bucket.Token
			if from == "" {
				r, err := e.findBucket(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				owner, err := bucket.ParsePublicKey(r.Owner)
				if err != nil {
					return err
				}
				key, err := e.ownerKey(owner, keyName)
				if err != nil {
					return err
				}
				t, err = bucket.NewGrant(key, id, subject, o, now.Add(life), delegate, now)
				if err != nil {
					return usageErr(err)
				}
			} else {
				parent, err := bucket.ParseToken(from)
				if err != nil {
					return usageErr(fmt.Errorf("--from: %w", err))
				}
				if b := parent.Links[0].Bucket; b != id {
					return usageErr(fmt.Errorf("--from: %w: it is for bucket %s, not %s", bucket.ErrWrongBucket, b, id))
				}
				last := parent.Links[len(parent.Links)-1]
				var key bucket.PrivateKey
				if parent.Key != nil { // a bearer token: its own key issues
					key = *parent.Key
				} else if key, err = e.ownerKey(parent.Subject(), keyName); err != nil {
					return err
				}
				exp := now.Add(life)
				if !cmd.Flags().Changed("expires") && exp.After(last.Expires) {
					exp = last.Expires // the most the grant may have
				}
				if t, err = parent.Delegate(key, subject, o, exp, delegate, now); err != nil {
					return usageErr(err)
				}
			}
			fmt.Fprintln(e.stdout, t)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&to, "to", "", "the key the grant is for: did:key:..., a peer ID or a key name")
	f.BoolVar(&bearer, "bearer", false, "grant to whoever holds the token (it carries a key of its own)")
	f.StringVar(&ops, "ops", "get", "operations: get, put, delete, comma-separated")
	f.StringVar(&expires, "expires", "", "lifetime, e.g. 12h or 30d (default 30d; with --from, that of the grant delegated)")
	f.BoolVar(&delegate, "can-delegate", false, "let the subject issue narrower grants")
	f.StringVar(&keyName, "key", "", "the key that signs (default: the keystore's key of the owner, or of the --from grant's subject)")
	f.StringVar(&from, "from", "", "a delegable grant to this repo's key, to issue a narrower one from")
	return c
}

// parseLife reads a lifetime: a Go duration (90m, 12h) or days (30d).
func parseLife(s string) (time.Duration, error) {
	if s == "" {
		return defaultGrantLife, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if n, err = strconv.Atoi(days); err == nil {
			d = time.Duration(n) * 24 * time.Hour
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("%q is not a duration like 12h or 30d", s)
	case d <= 0 || d > bucket.MaxLifetime:
		return 0, fmt.Errorf("%s is out of range (1s to %s)", s, bucket.MaxLifetime)
	}
	return d, nil
}

// account reads a public key, a peer ID or the name of a keystore key.
func (e *env) account(s string) (bucket.PublicKey, error) {
	if strings.HasPrefix(s, "did:") {
		k, err := bucket.ParsePublicKey(s)
		if err != nil {
			return k, usageErr(fmt.Errorf("--to: %w", err))
		}
		return k, nil
	}
	if p, err := peer.Decode(s); err == nil {
		k, err := repo.AccountOfPeer(p)
		if err != nil {
			return k, fmt.Errorf("--to: %w", err)
		}
		return k, nil
	}
	if err := repo.CheckKeyName(s); err != nil && s != repo.SelfKey {
		return bucket.PublicKey{}, usageErr(fmt.Errorf("--to %q: not a did:key, a peer ID or a key name", s))
	}
	ks, err := repo.Keys(e.repoPath)
	if err != nil {
		return bucket.PublicKey{}, err
	}
	k, err := ks.Get(s)
	if err != nil {
		return bucket.PublicKey{}, err
	}
	return k.Public(), nil
}
