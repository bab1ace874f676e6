package download

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/lightningnetwork/lnd/input"
)

// maxBlockSize bounds a block read from the REST endpoint (4 MB weight
// limit, with room).
const maxBlockSize = 8 << 20

// fundingCacheBlocks is how many blocks' outputs stay cached: channels of
// one block are usually announced together.
const fundingCacheBlocks = 16

var (
	// errFundingInvalid means the chain contradicts the announcement: no such
	// transaction or output, or an output that is not the 2-of-2 of its
	// bitcoin keys.
	errFundingInvalid = errors.New("funding output does not match")
	// errFundingUnavailable means the endpoint could not answer.
	errFundingUnavailable = errors.New("funding output unavailable")
)

// fundingChecker looks up channel funding outputs through bitcoind's REST
// interface (bitcoind -rest): /blockhashbyheight/H.bin, then
// /block/HASH.bin. It is safe for concurrent use.
type fundingChecker struct {
	base   string
	client *http.Client

	mu     sync.Mutex
	blocks map[uint32][][]*wire.TxOut // outputs per transaction, by height
	order  []uint32                   // cache eviction order
	fetch  chan struct{}              // one block download at a time
}

func newFundingChecker(base string) *fundingChecker {
	return &fundingChecker{
		base:   strings.TrimRight(base, "/"),
		client: &http.Client{Timeout: 30 * time.Second},
		blocks: make(map[uint32][][]*wire.TxOut),
		fetch:  make(chan struct{}, 1),
	}
}

// amount returns the value in satoshis of the funding output of scid after
// checking that it pays to the 2-of-2 multisig of the two bitcoin keys
// (P2WSH). It fails with errFundingInvalid or errFundingUnavailable.
func (f *fundingChecker) amount(ctx context.Context, scid uint64, btc1, btc2 [33]byte) (uint64, error) {
	height, txIndex, outIndex := uint32(scid>>40), int(scid>>16&0xFFFFFF), int(scid&0xFFFF)
	txs, err := f.block(ctx, height)
	if err != nil {
		return 0, err
	}
	if txIndex >= len(txs) || outIndex >= len(txs[txIndex]) {
		return 0, fmt.Errorf("%w: no output %d:%d:%d", errFundingInvalid, height, txIndex, outIndex)
	}
	out := txs[txIndex][outIndex]
	script, err := input.GenMultiSigScript(btc1[:], btc2[:])
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errFundingInvalid, err)
	}
	want, err := input.WitnessScriptHash(script)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errFundingInvalid, err)
	}
	if !bytes.Equal(out.PkScript, want) || out.Value <= 0 {
		return 0, fmt.Errorf("%w: output %d:%d:%d is not the channel's 2-of-2", errFundingInvalid, height, txIndex, outIndex)
	}
	return uint64(out.Value), nil
}

// block returns the outputs of the block at height, from the cache or the
// endpoint.
func (f *fundingChecker) block(ctx context.Context, height uint32) ([][]*wire.TxOut, error) {
	f.mu.Lock()
	txs, ok := f.blocks[height]
	f.mu.Unlock()
	if ok {
		return txs, nil
	}
	select {
	case f.fetch <- struct{}{}:
		defer func() { <-f.fetch }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Another worker may have fetched it meanwhile.
	f.mu.Lock()
	txs, ok = f.blocks[height]
	f.mu.Unlock()
	if ok {
		return txs, nil
	}
	raw, err := f.get(ctx, fmt.Sprintf("/blockhashbyheight/%d.bin", height), chainhash.HashSize)
	if errors.Is(err, errNotFound) {
		return nil, fmt.Errorf("%w: no block at height %d", errFundingInvalid, height)
	}
	if err != nil {
		return nil, err
	}
	hash, err := chainhash.NewHash(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: block hash: %v", errFundingUnavailable, err)
	}
	raw, err = f.get(ctx, "/block/"+hash.String()+".bin", maxBlockSize)
	if errors.Is(err, errNotFound) {
		return nil, fmt.Errorf("%w: block %s missing", errFundingUnavailable, hash)
	}
	if err != nil {
		return nil, err
	}
	var blk wire.MsgBlock
	if err := blk.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("%w: block %d: %v", errFundingUnavailable, height, err)
	}
	txs = make([][]*wire.TxOut, len(blk.Transactions))
	for i, tx := range blk.Transactions {
		txs[i] = tx.TxOut
	}
	f.mu.Lock()
	f.blocks[height] = txs
	f.order = append(f.order, height)
	if len(f.order) > fundingCacheBlocks {
		delete(f.blocks, f.order[0])
		f.order = f.order[1:]
	}
	f.mu.Unlock()
	return txs, nil
}

var errNotFound = errors.New("not found")

func (f *fundingChecker) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errFundingUnavailable, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errFundingUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, errNotFound
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: GET %s: %s", errFundingUnavailable, path, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil || int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: GET %s: body too long or unreadable", errFundingUnavailable, path)
	}
	return b, nil
}
