// An account's next touch in words and as a tag: when the next contact is due and why then
// (docs/DOMAIN.md, "Next touch").

import { Tag } from "@carbon/react";
import { graphql } from "./gql";
import { count, day, when } from "./format";

/** What every screen reads of a next touch. */
export const NEXT_TOUCH_FIELDS = graphql(`
  fragment NextTouchFields on NextTouch {
    due
    basis
    daysUntil
    overdue
    lastContactDate
    maxDaysBetweenContact
    meeting {
      subject
      startsAt
    }
  }
`);

export interface NextTouchView {
  due: string;
  basis: string;
  daysUntil: number;
  overdue: boolean;
  lastContactDate?: string | null;
  maxDaysBetweenContact: number;
  meeting?: { subject: string; startsAt: string } | null;
}

/** "overdue by 6 days", "today", "in 5 days". */
export function dueWords(touch: NextTouchView): string {
  if (touch.daysUntil < 0) return `overdue by ${count(-touch.daysUntil, "day", "days")}`;
  if (touch.daysUntil === 0) return "due today";
  return `in ${count(touch.daysUntil, "day", "days")}`;
}

/** Why it is due then, in a sentence. */
export function touchReason(touch: NextTouchView): string {
  if (touch.basis === "MEETING" && touch.meeting) return `a meeting on a calendar: “${touch.meeting.subject}”, ${when(touch.meeting.startsAt)}`;
  const every = `its tier asks for a contact at least every ${count(touch.maxDaysBetweenContact, "day", "days")}`;
  return touch.lastContactDate ? `last contact ${day(touch.lastContactDate)}; ${every}` : `no contact yet since onboarding; ${every}`;
}

export function TouchTag({ touch }: { touch: NextTouchView | null | undefined }) {
  if (!touch) return <span className="cs-muted">—</span>;
  const type = touch.overdue ? "red" : touch.daysUntil <= 7 ? "warm-gray" : "gray";
  return (
    <Tag size="sm" type={type} title={touchReason(touch)}>
      {touch.basis === "MEETING" ? (touch.daysUntil === 0 ? "meeting today" : `meeting ${dueWords(touch)}`) : dueWords(touch)}
    </Tag>
  );
}
