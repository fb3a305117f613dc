-- One database and one owner per service; no service can read another's tables.
-- CHANGE ME: development passwords (they match deploy/env/<service>.env).
CREATE USER intake WITH PASSWORD 'intake-dev-password';
CREATE DATABASE intake OWNER intake;
CREATE USER casework WITH PASSWORD 'casework-dev-password';
CREATE DATABASE casework OWNER casework;
CREATE USER referrals WITH PASSWORD 'referrals-dev-password';
CREATE DATABASE referrals OWNER referrals;
CREATE USER finance WITH PASSWORD 'finance-dev-password';
CREATE DATABASE finance OWNER finance;
