// A teacher's weekly availability (GET/PUT /api/teachers/me/schedule): hours per weekday in one
// time zone. No hours at all means "available at any time".

import { api } from './api.js';
import { h, title, say } from './ui.js';

const weekdays = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

function slotRow(slot) {
  const row = h('li', { class: 'slot' },
    h('label', {}, 'From', h('input', { type: 'time', name: 'start', value: slot.start_time, required: true })),
    h('label', {}, 'To', h('input', { type: 'time', name: 'end', value: slot.end_time === '24:00' ? '23:59' : slot.end_time, required: true })),
    h('button', { type: 'button', class: 'chip', 'aria-label': 'Remove these hours', onclick: () => row.remove() }, '✕'));
  return row;
}

export async function availability() {
  const s = await api('GET', '/teachers/me/schedule');
  const zone = s.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  const days = weekdays.map((name, i) => {
    const list = h('ul', { class: 'slots', dataset: { weekday: i + 1 } },
      s.slots.filter((slot) => slot.weekday === i + 1).map(slotRow));
    return h('section', { class: 'day' }, h('h2', {}, name), list,
      h('button', { type: 'button', class: 'chip', onclick: () => list.append(slotRow({ start_time: '09:00', end_time: '18:00' })) }, '+ hours'));
  });
  const zoneInput = h('input', { type: 'text', name: 'timezone', value: zone, autocomplete: 'off' });
  const save = async () => {
    const slots = [];
    for (const list of document.querySelectorAll('ul.slots')) {
      for (const row of list.querySelectorAll('li')) {
        const end = row.querySelector('[name=end]').value;
        slots.push({
          weekday: Number(list.dataset.weekday),
          start_time: row.querySelector('[name=start]').value,
          end_time: end === '23:59' ? '24:00' : end,
        });
      }
    }
    try {
      await api('PUT', '/teachers/me/schedule', { timezone: zoneInput.value.trim() || 'UTC', slots });
      say('Availability saved.', 'ok');
    } catch (e) {
      say(`Not saved: ${e.message}`, 'error');
    }
  };
  return {
    nodes: [
      title('My availability', s.slots.length === 0 ? 'No hours set: you can be booked at any time.' : null),
      h('label', { class: 'zone' }, 'Time zone', zoneInput),
      h('div', { id: 'availability' }, days),
      h('button', { type: 'button', class: 'btn secondary', onclick: save }, 'Save'),
    ],
    main: { text: 'Save availability', run: save },
  };
}
