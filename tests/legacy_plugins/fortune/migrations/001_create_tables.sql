-- plugins/fortune/migrations/001_create_tables.sql
CREATE TABLE IF NOT EXISTS fortune_favorites (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    fortune TEXT NOT NULL,
    timestamp REAL NOT NULL
);

CREATE INDEX idx_fortune_user ON fortune_favorites(user);
