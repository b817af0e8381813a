// Package bucket holds what decides who may read and write content:
// accounts (ed25519 keys), buckets (self-certifying IDs and the signed
// records that describe them) and grants (signed, delegable capability
// tokens that chain back to a bucket's owner), with their canonical
// encodings and their verification. It imports no networking: node/ puts
// records in the DHT, carries tokens on exchange requests and checks them
// with a Verifier.
//
// Every encoding is CBOR in one canonical form, decoded strictly (a
// decoder re-encodes what it read and refuses bytes that differ), with
// every field bounded, so a signature covers exactly one byte string.
package bucket
