package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Figure names of the throughput scenario.
const (
	figWrites   = "writes accepted by node A"
	figWritesIn = "node B has them all, after the last"
)

// Ways the throughput scenario writes.
const (
	viaAPI  = "storage API"
	viaHTTP = "HTTP"
)

// runThroughput measures how many writes per second node A accepts while it syncs, on
// store, written through the storage API (db.Set) or over HTTP (PUT on ooo's REST route),
// by o.writers concurrent writers; and how long after the last write node B holds every
// one of them. Each round writes o.perRound new entries, or as many as fit in
// o.writeFor; the collection starts empty and keeps what earlier rounds wrote.
func runThroughput(r *results, o options, mode, store, via string) error {
	c, err := newCluster(mode, store, 2, 0, o.logger)
	if err != nil {
		return err
	}
	defer c.close()
	a, b := c.nodes[0], c.nodes[1]
	scale := store + ", " + via
	rate := &figure{name: figWrites, size: scale, mode: mode, unit: unitRate}
	lag := &figure{name: figWritesIn, size: scale, mode: mode, unit: unitMs}
	r.add(rate)
	r.add(lag)
	write := func(k string, i int) error {
		_, err := a.db.Set(k, entryData(i, 1))
		return err
	}
	if via == viaHTTP {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.writers, MaxConnsPerHost: o.writers}}
		defer client.CloseIdleConnections()
		write = func(k string, i int) error { return putHTTP(client, a.addr, k, entryData(i, 1)) }
	}
	for round := range o.rounds {
		prefix := fmt.Sprintf("users/t%d-", round)
		onNode := b.arrived.distinct(prefix)
		written, began, last, err := burst(write, prefix, o.perRound, o.writeFor, o.writers)
		if err != nil {
			return err
		}
		rate.samples = append(rate.samples, float64(written)/last.Sub(began).Seconds())
		at, err := wait(onNode.expect(written), o.convergeFor, fmt.Sprintf("%d writes on node B", written))
		if err != nil {
			lag.note = fmt.Sprintf("(> %s: %d of %d)", o.convergeFor, onNode.count(), written)
			return nil
		}
		lag.samples = append(lag.samples, ms(max(0, at.Sub(last))))
		if err := c.settle(o.convergeFor); err != nil {
			return err
		}
	}
	return nil
}

// burst runs writers goroutines that write keys prefix+i for i = 0, 1, ... until n are
// written or the time is up. It returns how many were written, when it began and when
// the last write returned.
func burst(write func(k string, i int) error, prefix string, n int, limit time.Duration, writers int) (int, time.Time, time.Time, error) {
	var (
		next    atomic.Int64
		written atomic.Int64
		mu      sync.Mutex
		last    time.Time
		first   error
		wg      sync.WaitGroup
	)
	began := time.Now()
	stop := began.Add(limit)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || time.Now().After(stop) {
					return
				}
				err := write(fmt.Sprintf("%s%d", prefix, i), i)
				done := time.Now()
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				if done.After(last) {
					last = done
				}
				mu.Unlock()
				if err != nil {
					return
				}
				written.Add(1)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return 0, began, last, fmt.Errorf("bench: write on node A: %w", first)
	}
	return int(written.Load()), began, last, nil
}

// putHTTP writes data at k on the server at addr through ooo's REST route.
func putHTTP(client *http.Client, addr, k string, data []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+addr+"/"+k, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT %s: %s", k, resp.Status)
	}
	return nil
}
