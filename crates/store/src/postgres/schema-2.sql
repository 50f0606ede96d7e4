-- Version 2: the console (SQLite's migration 8): sessions by the hash of their token,
-- passwords (argon2id PHC strings), failed sign-ins.

CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts(id),
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_account ON console_sessions(account_id);
CREATE TABLE console_passwords (
    account_id BIGINT PRIMARY KEY REFERENCES accounts(id),
    phc TEXT NOT NULL,
    set_at BIGINT NOT NULL
);
CREATE TABLE console_failures (subject TEXT NOT NULL, at BIGINT NOT NULL);
CREATE INDEX console_failures_by_subject ON console_failures(subject, at);
