-- The demo shop: a small but realistic schema for `swain demo`.
CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    plan        TEXT NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'enterprise')),
    created_at  TIMESTAMP WITH TIME ZONE NOT NULL
);

CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts (id),
    external_id  UUID NOT NULL UNIQUE,
    email        VARCHAR(255) NOT NULL UNIQUE,
    first_name   VARCHAR(100) NOT NULL,
    last_name    VARCHAR(100),
    is_active    BOOLEAN NOT NULL DEFAULT 1,
    created_at   TIMESTAMP WITH TIME ZONE NOT NULL,
    -- argon2id (or bcrypt) hash; hidden from the table API by the auth mapping
    password_hash VARCHAR(255)
);

-- The auth mapping's bookkeeping (swain.toml [mapping.*]).
CREATE TABLE sessions (
    id                  INTEGER PRIMARY KEY,
    user_id             INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_token_hash  VARCHAR(64) NOT NULL,
    expires_at          TIMESTAMP WITH TIME ZONE NOT NULL,
    last_used_at        TIMESTAMP WITH TIME ZONE
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash    VARCHAR(64) NOT NULL UNIQUE,
    name        VARCHAR(100),
    created_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    revoked_at  TIMESTAMP WITH TIME ZONE
);

CREATE TABLE password_reset_tokens (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  VARCHAR(64) NOT NULL UNIQUE,
    expires_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    used_at     TIMESTAMP WITH TIME ZONE,
    created_at  TIMESTAMP WITH TIME ZONE NOT NULL
);

CREATE TABLE categories (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    parent_id  INTEGER REFERENCES categories (id)
);

CREATE TABLE products (
    id           INTEGER PRIMARY KEY,
    category_id  INTEGER REFERENCES categories (id),
    sku          VARCHAR(32) NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    price        DECIMAL(10, 2) NOT NULL CHECK (price >= 0),
    stock        INTEGER NOT NULL DEFAULT 0,
    attributes   JSON,
    thumbnail    BLOB,
    released_on  DATE
);

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    user_id     INTEGER NOT NULL REFERENCES users (id),
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled')),
    total       DECIMAL(12, 2) NOT NULL DEFAULT 0,
    placed_at   TIMESTAMP WITH TIME ZONE NOT NULL,
    notes       TEXT
);

CREATE TABLE order_items (
    order_id    INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no     INTEGER NOT NULL,
    product_id  INTEGER NOT NULL REFERENCES products (id),
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    unit_price  DECIMAL(10, 2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE VIEW order_totals AS
    SELECT o.id AS order_id, o.account_id, o.status,
           COUNT(i.line_no) AS lines, SUM(i.quantity) AS items
    FROM orders o LEFT JOIN order_items i ON i.order_id = o.id
    GROUP BY o.id, o.account_id, o.status;
