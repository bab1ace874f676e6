package persistence

import (
	"context"
	"io/fs"
	"time"
)

// LoadMigrations exposes migration file parsing to tests.
func LoadMigrations(fsys fs.FS) (int, error) {
	m, err := loadMigrations(fsys)
	return len(m), err
}

// RunAt runs one prune of the job as of now.
func (j *RetentionJob) RunAt(ctx context.Context, now time.Time) {
	j.now = func() time.Time { return now }
	j.runOnce(ctx)
}
