-- The records the rollout guardrails read, as the application's Prisma schema stores them
-- (quoted camelCase identifiers). PostgreSQL: "createdAt" is TIMESTAMP(3) in UTC (Prisma's
-- DateTime), metadata is JSONB (Prisma's Json; JSON works too), confidences are DOUBLE
-- PRECISION (Prisma's Float).
CREATE TABLE IF NOT EXISTS "AIInteraction" (
    "id" TEXT PRIMARY KEY,
    "clientId" TEXT,
    "createdAt" TIMESTAMP(3),
    "promptKey" TEXT,
    "metadata" JSONB
);

CREATE TABLE IF NOT EXISTS "AIDraft" (
    "id" TEXT PRIMARY KEY,
    "clientId" TEXT,
    "createdAt" TIMESTAMP(3),
    "aiInteractionId" TEXT,
    "status" TEXT,
    "autoSendConfidence" DOUBLE PRECISION,
    "autoSendThreshold" DOUBLE PRECISION,
    "autoSendAction" TEXT,
    "autoSendReason" TEXT
);

CREATE TABLE IF NOT EXISTS "MeetingOverseerDecision" (
    "id" TEXT PRIMARY KEY,
    "clientId" TEXT,
    "createdAt" TIMESTAMP(3),
    "aiInteractionId" TEXT,
    "stage" TEXT,
    "decision" TEXT,
    "confidence" DOUBLE PRECISION
);

-- The guardrails' queries read a time window per table and look each record's interaction up
-- by id (the primary key); the switch-time scan reads interactions by client.
CREATE INDEX IF NOT EXISTS "AIInteraction_clientId_createdAt_idx"
    ON "AIInteraction" ("clientId", "createdAt");
CREATE INDEX IF NOT EXISTS "AIInteraction_createdAt_idx" ON "AIInteraction" ("createdAt");
CREATE INDEX IF NOT EXISTS "AIDraft_createdAt_idx" ON "AIDraft" ("createdAt");
CREATE INDEX IF NOT EXISTS "MeetingOverseerDecision_createdAt_idx"
    ON "MeetingOverseerDecision" ("createdAt");
