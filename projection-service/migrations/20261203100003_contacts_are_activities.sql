-- Coverage counts contact from the activities the customers projector keeps: the same facts
-- (every logged activity with its kind, day and participants, corrected in place, marked when
-- retracted), which the coverage projector used to copy into a table of its own. Its copy goes
-- (one row and two index entries less per activity, live and in every rebuild); the view keeps
-- the name the coverage queries read (projection-service/src/coverage.rs, contacts_view).
DROP TABLE coverage_contacts;

CREATE VIEW coverage_contacts AS
SELECT customer_id, activity_id, kind, occurred_at, occurred_on, participants
  FROM customer_activities
 WHERE NOT retracted;
