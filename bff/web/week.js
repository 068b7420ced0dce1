// My week (GET /api/schedule/{me}?from=&to=): lessons from Monday to Sunday, by day, with the
// previous and the next week a tap away.

import { api, missingParts } from './api.js';
import { h, title, lessonItem, partialNote, formatDay } from './ui.js';

const DAY_MS = 86400000;

// Monday 00:00 (local time) of the week `offset` weeks from this one.
function monday(offset) {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  d.setDate(d.getDate() - ((d.getDay() + 6) % 7) + 7 * offset);
  return d;
}

export async function week(app, { offset = 0 }) {
  const from = monday(offset);
  const to = new Date(from.getTime() + 7 * DAY_MS);
  const q = `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
  const s = await api('GET', `/schedule/${app.me}?${q}`);
  const last = new Date(to.getTime() - DAY_MS);
  const label = offset === 0 ? 'This week' : offset === 1 ? 'Next week' : offset === -1 ? 'Last week' : 'Week';
  const nodes = [title(label, `${formatDay(from.toISOString())} – ${formatDay(last.toISOString())}`)];
  nodes.push(h('div', { class: 'pager' },
    h('button', { type: 'button', class: 'btn secondary', id: 'prev-week', onclick: () => app.replace('week', { offset: offset - 1 }) }, '‹ Previous'),
    h('button', { type: 'button', class: 'btn secondary', id: 'next-week', onclick: () => app.replace('week', { offset: offset + 1 }) }, 'Next ›')));
  const missing = missingParts(s);
  if (missing) nodes.push(partialNote(`Group titles or teachers' names are missing: ${missing} did not answer.`));

  if (s.lessons.length === 0) {
    nodes.push(h('p', { class: 'muted', id: 'week-empty' }, 'No lessons this week.'));
  } else {
    const days = new Map();
    for (const l of s.lessons) {
      const day = formatDay(l.starts_at);
      if (!days.has(day)) days.set(day, []);
      days.get(day).push(l);
    }
    const list = h('div', { id: 'week-lessons' });
    for (const [day, lessons] of days) {
      list.append(h('h2', {}, day), h('ul', { class: 'list' }, lessons.map((l) => {
        const extra = [l.group_title || (l.group_id ? null : 'One-to-one'), l.teacher_name].filter(Boolean).join(' · ');
        return lessonItem(l, extra, () => app.go('lesson', { id: l.id }));
      })));
    }
    nodes.push(list);
  }
  return { nodes, main: offset !== 0 ? { text: 'Back to this week', run: () => app.replace('week', { offset: 0 }) } : null };
}
