-- The records the rollout guardrails read, as the application's Prisma schema stores them
-- (quoted camelCase identifiers). SQLite: "createdAt" is ISO-8601 UTC text
-- ('2026-11-25 16:00:00.000') or Unix milliseconds; metadata is JSON text.
CREATE TABLE IF NOT EXISTS "AIInteraction" (
    "id" TEXT PRIMARY KEY,
    "clientId" TEXT,
    "createdAt" TIMESTAMP,
    "promptKey" TEXT,
    "metadata" JSON
);

CREATE TABLE IF NOT EXISTS "AIDraft" (
    "id" TEXT PRIMARY KEY,
    "clientId" TEXT,
    "createdAt" TIMESTAMP,
    "aiInteractionId" TEXT,
    "status" TEXT,
    "autoSendConfidence" REAL,
    "autoSendThreshold" REAL,
    "autoSendAction" TEXT,
    "autoSendReason" TEXT
);

CREATE TABLE IF NOT EXISTS "MeetingOverseerDecision" (
    "id" TEXT PRIMARY KEY,
    "clientId" TEXT,
    "createdAt" TIMESTAMP,
    "aiInteractionId" TEXT,
    "stage" TEXT,
    "decision" TEXT,
    "confidence" REAL
);

-- The guardrails' queries read a time window per table and look each record's interaction up
-- by id (the primary key); the switch-time scan reads interactions by client.
CREATE INDEX IF NOT EXISTS "AIInteraction_clientId_createdAt_idx"
    ON "AIInteraction" ("clientId", "createdAt");
CREATE INDEX IF NOT EXISTS "AIInteraction_createdAt_idx" ON "AIInteraction" ("createdAt");
CREATE INDEX IF NOT EXISTS "AIDraft_createdAt_idx" ON "AIDraft" ("createdAt");
CREATE INDEX IF NOT EXISTS "MeetingOverseerDecision_createdAt_idx"
    ON "MeetingOverseerDecision" ("createdAt");
