-- Enrollments in paid groups (issue 16): the payment that bought the seat, and a last status,
-- 'refunded', for a seat whose payment was refunded (the member was taken out of the group). It
-- comes after every other status, so a refund is always a forward move; a new membership after it
-- starts the enrollment again (services/students/enrollments.c).
ALTER TYPE enrollment_status ADD VALUE IF NOT EXISTS 'refunded';
ALTER TABLE group_enrollments ADD COLUMN IF NOT EXISTS payment_id UUID;
