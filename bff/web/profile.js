// My profile: name, role, my groups and my next lessons (GET /api/user/profile/{me}). A part that
// did not arrive (partial) is said to be missing; the rest is shown.

import { api, missingParts } from './api.js';
import { h, title, personName, lessonItem, partialNote, section } from './ui.js';

const roles = { student: 'Student', teacher: 'Teacher', admin: 'Administrator' };

export async function profile(app) {
  const p = await api('GET', `/user/profile/${app.me}`);
  app.user = p.user;
  app.role = p.user.role;
  app.names.set(app.me, personName(p.user, app.me));

  const sub = [roles[p.user.role] || p.user.role, p.user.username ? `@${p.user.username}` : null].filter(Boolean).join(' · ');
  const nodes = [title(personName(p.user, app.me), sub)];
  const missing = missingParts(p);
  if (missing) nodes.push(partialNote(`Not everything could be loaded: ${missing} did not answer.`));

  if (p.teacher && p.teacher.bio) nodes.push(h('p', { class: 'about' }, p.teacher.bio));
  if (p.student && p.student.goals) nodes.push(h('p', { class: 'about' }, `Goal: ${p.student.goals}`));

  const titles = new Map((p.groups || []).map((g) => [g.id, g.title]));
  nodes.push(section('My groups', p.groups, {
    listId: 'my-groups',
    missing: 'Your groups are unavailable right now.',
    empty: 'No groups yet. A teacher\'s invitation link adds you to one.',
    item: (g) => h('li', { dataset: { groupId: g.id } },
      h('button', { type: 'button', class: 'row', onclick: () => app.go('group', { id: g.id }) },
        h('span', { class: 'topic' }, g.title),
        h('span', { class: 'muted' }, `${(g.language_code || '').toUpperCase()} ${g.level || ''} · ${g.member_count} members`),
        g.teacher_telegram_id === app.me ? h('span', { class: 'tag' }, 'you teach') : null)),
  }));
  nodes.push(section('Next lessons', p.lessons, {
    listId: 'next-lessons',
    missing: 'Lessons are unavailable right now. Try again in a moment.',
    missingId: 'lessons-unavailable',
    empty: 'No lessons coming up.',
    item: (l) => lessonItem(l, l.group_id ? titles.get(l.group_id) : 'One-to-one', () => app.go('lesson', { id: l.id })),
  }));
  return { nodes, main: { text: 'My week', run: () => app.tab('week') } };
}
