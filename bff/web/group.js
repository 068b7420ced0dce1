// A group (GET /api/groups/{id}): teacher, members, progress, lessons. Its teacher also creates
// invitations, schedules lessons (newLesson) and marks attendance (lesson).

import { api, missingParts } from './api.js';
import * as tg from './tg.js';
import { h, title, personName, lessonItem, partialNote, section, say, formatSlot, dateValue } from './ui.js';

const statuses = ['present', 'late', 'absent', 'excused'];

function teaches(app, teacherId) {
  return teacherId === app.me || app.role === 'admin';
}

async function invite(app, groupId, box) {
  try {
    const inv = await api('POST', `/groups/${groupId}/invitations`, { max_uses: 50 });
    tg.haptic('success');
    box.replaceChildren(
      h('p', {}, 'Invitation code (valid for 7 days, 50 uses):'),
      h('code', { class: 'code', id: 'invite-code' }, inv.code),
      h('p', { class: 'muted' }, `Send the app's link with ?startapp=${inv.code}: whoever opens it joins this group.`),
    );
  } catch (e) {
    say(`The invitation was not created: ${e.message}`, 'error');
  }
}

export async function group(app, { id }) {
  const v = await api('GET', `/groups/${id}`);
  const g = v.group;
  const own = teaches(app, g.teacher_telegram_id);
  const nodes = [title(g.title, `${(g.language_code || '').toUpperCase()} ${g.level || ''} · ${g.member_count} of ${g.capacity} places`)];
  const missing = missingParts(v);
  if (missing) nodes.push(partialNote(`Not everything could be loaded: ${missing} did not answer.`));
  if (g.description) nodes.push(h('p', { class: 'about' }, g.description));

  const teacherName = v.teacher ? personName(v.teacher.user, g.teacher_telegram_id) : `#${g.teacher_telegram_id}`;
  app.names.set(g.teacher_telegram_id, teacherName);
  nodes.push(h('p', { id: 'group-teacher' }, h('strong', {}, 'Teacher: '), teacherName));
  const progress = v.progress || g.progress;
  if (progress) {
    nodes.push(h('p', { id: 'group-progress' }, h('strong', {}, 'Progress: '),
      `${progress.lessons_done} lessons done`, progress.current_topic ? ` · now: ${progress.current_topic}` : ''));
  }

  nodes.push(section('Members', v.members, {
    listId: 'members',
    missing: 'The members are unavailable right now.',
    empty: 'Nobody has joined yet.',
    item: (m) => {
      const name = personName(m, m.telegram_id);
      app.names.set(m.telegram_id, name);
      return h('li', { class: 'member' }, h('span', {}, name),
        m.enrollment_status ? h('span', { class: 'tag' }, m.enrollment_status.replace('_', ' ')) : null);
    },
  }));
  nodes.push(section('Lessons', v.lessons, {
    listId: 'group-lessons',
    missing: 'Lessons are unavailable right now.',
    empty: 'No lessons scheduled.',
    item: (l) => lessonItem(l, null, () => app.go('lesson', { id: l.id })),
  }));

  if (!own) return { nodes };
  const box = h('div', { class: 'card', id: 'invitation' });
  nodes.push(h('h2', {}, 'Invite students'), box,
    h('button', { type: 'button', class: 'btn', id: 'create-invitation', onclick: () => invite(app, id, box) }, 'Create an invitation'));
  return {
    nodes,
    main: { text: 'Schedule a lesson', run: () => app.go('newLesson', { groupId: id, title: g.title, teacherId: g.teacher_telegram_id }) },
  };
}

// Scheduling a lesson for a group: date, time, length, topic. The main button saves it.
export async function newLesson(app, { groupId, title: groupTitle, teacherId }) {
  const tomorrow = new Date(Date.now() + 86400000);
  const form = h('form', { class: 'form', id: 'lesson-form', onsubmit: (e) => e.preventDefault() },
    h('label', {}, 'Date', h('input', { type: 'date', name: 'date', required: true, value: dateValue(tomorrow) })),
    h('label', {}, 'Start', h('input', { type: 'time', name: 'time', required: true, value: '10:00' })),
    h('label', {}, 'Length', h('select', { name: 'duration' },
      [45, 60, 90].map((m) => h('option', { value: m, selected: m === 60 }, `${m} minutes`)))),
    h('label', {}, 'Topic', h('input', { type: 'text', name: 'topic', maxlength: 500, placeholder: 'e.g. Past Simple' })));
  const save = async () => {
    const f = new FormData(form);
    const starts = new Date(`${f.get('date')}T${f.get('time')}`);
    if (Number.isNaN(starts.getTime())) {
      say('Choose a date and a time.', 'error');
      return;
    }
    const body = {
      teacher_telegram_id: teacherId,
      group_id: groupId,
      starts_at: starts.toISOString(),
      duration_minutes: Number(f.get('duration')),
    };
    if (f.get('topic')) body.topic = String(f.get('topic'));
    try {
      const created = await api('POST', '/lessons', body);
      tg.haptic('success');
      say(`Lesson scheduled: ${formatSlot(created)}.`, 'ok');
      app.back();
    } catch (e) {
      tg.haptic('error');
      say(`Not scheduled: ${e.message}`, 'error');
    }
  };
  return {
    nodes: [title('New lesson', groupTitle), form, h('button', { type: 'button', class: 'btn secondary', onclick: save }, 'Schedule')],
    main: { text: 'Schedule lesson', run: save },
  };
}

// One lesson, its participants and their attendance; its teacher marks it.
export async function lesson(app, { id }) {
  const l = await api('GET', `/lessons/${id}`);
  const own = teaches(app, l.teacher_telegram_id);
  const marked = new Map((l.attendance || []).map((a) => [a.student_telegram_id, a.status]));
  const nodes = [title(l.topic || 'Lesson', formatSlot(l))];
  if (l.status !== 'scheduled') nodes.push(h('p', { class: 'note warn' }, `This lesson is ${l.status}.`));
  nodes.push(h('h2', {}, own ? 'Attendance' : 'Participants'));
  // calendar-service takes attendance from the lesson's start (until ATTENDANCE_WINDOW_H after its end).
  const open = own && l.status !== 'cancelled' && Date.now() >= Date.parse(l.starts_at);
  if (own && l.status !== 'cancelled' && !open) nodes.push(h('p', { class: 'muted', id: 'attendance-closed' }, 'Attendance can be marked once the lesson has started.'));
  const rows = (l.participants || []).filter((p) => own || p === app.me || marked.has(p));
  if (!own && !(l.participants || []).includes(app.me)) nodes.push(h('p', { class: 'muted' }, `Taught by ${app.names.get(l.teacher_telegram_id) || '#' + l.teacher_telegram_id}.`));
  nodes.push(h('ul', { class: 'list', id: 'attendance' }, rows.map((p) => {
    const state = h('span', { class: 'tag', dataset: { state: marked.get(p) || 'none' } }, marked.get(p) || 'not marked');
    const mark = async (status) => {
      try {
        await api('PUT', `/lessons/${id}/attendance/${p}`, { status });
        state.textContent = status;
        state.dataset.state = status;
        say(`${app.names.get(p) || '#' + p}: ${status}.`, 'ok');
      } catch (e) {
        say(`Not marked: ${e.message}`, 'error');
      }
    };
    return h('li', { class: 'member', dataset: { student: p } },
      h('span', {}, app.names.get(p) || `#${p}`), state,
      open
        ? h('span', { class: 'marks', role: 'group', 'aria-label': 'Mark attendance' },
          statuses.map((s) => h('button', { type: 'button', class: 'chip', dataset: { mark: s }, onclick: () => mark(s) }, s)))
        : null);
  })));
  return { nodes };
}
