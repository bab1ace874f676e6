package persistence

import "io/fs"

// LoadMigrations exposes migration file parsing to tests.
func LoadMigrations(fsys fs.FS) (int, error) {
	m, err := loadMigrations(fsys)
	return len(m), err
}
