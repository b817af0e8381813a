// Package dht finds who holds a piece: a Kademlia DHT (go-libp2p-kad-dht)
// scoped to one cluster by its protocol prefix (/ddc/<cluster>), so lookups
// stay inside the cluster. It announces pieces with bounded concurrency,
// re-announces everything a node holds on a sweep within the record
// lifetime, and looks up providers as a stream, so a download can start on
// the first holder and add more as they are found.
package dht
