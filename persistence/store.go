package persistence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrUnavailable reports that Postgres could not be reached or dropped the
// connection; the operation may succeed when retried later.
var ErrUnavailable = errors.New("database unavailable")

// Store is a connection pool to lnsync's database. It is safe for concurrent
// use; Close releases it.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to url with at most maxConns connections and checks that the
// server answers. Sessions use UTC.
func Open(ctx context.Context, url string, maxConns int32) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	cfg.ConnConfig.RuntimeParams["application_name"] = "lnsync"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database: %w", translate(err))
	}
	return &Store{pool: pool}, nil
}

// Close closes every connection. Operations in flight fail.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return translate(err)
	}
	return nil
}

// translate maps connection-level failures to ErrUnavailable, keeping the
// original error in the chain for logs.
func translate(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if isUnavailable(err) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// IsUnavailable reports whether err means Postgres could not be reached or
// dropped the connection: ErrUnavailable, or such a failure reported by pgx
// to a package that runs its own SQL on Pool.
func IsUnavailable(err error) bool {
	return errors.Is(err, ErrUnavailable) || (err != nil && isUnavailable(err))
}

func isUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P0x: admin/crash shutdown, cannot connect now.
		switch {
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "08",
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03":
			return true
		}
		return false
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	// A connection cut mid-reply surfaces as an unexpected EOF.
	return errors.As(err, &netErr) || errors.As(err, &connectErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, pgx.ErrTxClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Pool returns the connection pool, for packages that keep their own SQL over
// lnsync's database (the reconciliation metrics). They own the translation of
// their errors.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
