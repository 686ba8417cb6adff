// Package adapters shows *replica.DB under the database libraries a
// service already uses, and tests each against a real PostgreSQL primary
// and standby: GORM (gorm.io/gorm with gorm.io/driver/postgres, through
// its ConnPool) and a pgx pool per node (pgxpool, through
// stdlib.OpenDBFromPool). It is a module of its own so that the
// scaleout module does not depend on GORM; it holds no code to import,
// only the examples and their tests.
package adapters
