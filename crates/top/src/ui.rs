//! The full-screen dashboard: ratatui drawing of a [`Dashboard`], and the key loop that owns
//! the terminal (raw mode, alternate screen) and gives it back on every way out.

use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row as TableRow, Table, Wrap};
use ratatui::Frame;

use super::dashboard::{Dashboard, Status};
use super::model::{format_rate, Fill, Kind, Row};
use super::{Message, TopError};

/// How long the key loop waits for a key before looking for a new sample.
const KEY_POLL: Duration = Duration::from_millis(100);
/// Cells of a channel's fill bar.
const BAR_WIDTH: usize = 20;

/// Puts the terminal back (cooked mode, main screen) when dropped: on return, on error, and
/// while unwinding from a panic (ratatui's panic hook also restores before the message).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs the dashboard until `q`, `Esc`, Ctrl-C, or a [`Message::Quit`] (a signal); draws a
/// frame on every sample and on every resize.
pub fn run(
    dashboard: &mut Dashboard,
    samples: &Receiver<Message>,
    interval: Duration,
) -> Result<(), TopError> {
    // The guard exists before raw mode is entered, so a failure half way is undone too.
    let _guard = TerminalGuard;
    let mut terminal = ratatui::try_init().map_err(TopError::Terminal)?;
    let mut dirty = true;
    loop {
        if dirty {
            terminal
                .draw(|f| render(f, dashboard, interval))
                .map_err(TopError::Terminal)?;
            dirty = false;
        }
        if event::poll(KEY_POLL).map_err(TopError::Terminal)? {
            match event::read().map_err(TopError::Terminal)? {
                Event::Key(key) if is_quit(&key) => return Ok(()),
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        loop {
            match samples.try_recv() {
                Ok(Message::Sample(outcome)) => {
                    dashboard.update(outcome, &super::clock());
                    dirty = true;
                }
                Ok(Message::Quit) | Err(TryRecvError::Disconnected) => return Ok(()),
                Err(TryRecvError::Empty) => break,
            }
        }
    }
}

/// `q`, `Esc` or Ctrl-C (raw mode turns Ctrl-C into a key).
fn is_quit(key: &KeyEvent) -> bool {
    if key.kind != KeyEventKind::Press {
        return false;
    }
    match key.code {
        KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc => true,
        KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
        _ => false,
    }
}

/// Draws one frame: header, the components table, the topology, a key hint.
pub fn render(frame: &mut Frame, d: &Dashboard, interval: Duration) {
    let topology = d.topology_lines();
    let topology_height = (topology.len() as u16 + 2).clamp(3, 14);
    // A long error wraps onto up to three lines rather than being cut.
    let status_text = format!("status: {}", d.status_line());
    let columns = frame.area().width.max(1) as usize;
    let status_height = status_text.chars().count().div_ceil(columns).clamp(1, 3) as u16;
    let [header, table, graph, footer] = Layout::vertical([
        Constraint::Length(1 + status_height),
        Constraint::Min(4),
        Constraint::Length(topology_height),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    let status_style = match d.status {
        Status::Ok => Style::new().fg(Color::Green),
        Status::Connecting => Style::new().fg(Color::Yellow),
        Status::Error(_) => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    };
    let title = Line::from(vec![
        Span::styled("flumen top", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(d.header().trim_start_matches("flumen top").to_string()),
    ]);
    let status = Line::from(vec![
        Span::raw("status: "),
        Span::styled(d.status_line(), status_style),
    ]);
    frame.render_widget(
        Paragraph::new(vec![title, status]).wrap(Wrap { trim: false }),
        header,
    );

    frame.render_widget(components(d), table);

    let lines: Vec<Line> = topology.into_iter().map(Line::from).collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" topology ")),
        graph,
    );
    frame.render_widget(
        Paragraph::new(format!(
            "q quit · refresh every {}s",
            interval.as_secs_f64()
        ))
        .style(Style::new().add_modifier(Modifier::DIM)),
        footer,
    );
}

/// The components table.
fn components(d: &Dashboard) -> Table<'static> {
    let width = |f: fn(&Row) -> usize, title: &str| {
        d.rows.iter().map(f).chain([title.len()]).max().unwrap_or(0) as u16
    };
    let name_w = width(|r| r.name.chars().count(), "NAME");
    let type_w = width(
        |r| r.type_name.as_deref().map_or(1, |t| t.chars().count()),
        "TYPE",
    );
    let fill_w = width(|r| r.fill.map_or(0, |f| bar(f).width()), "FILL");
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let header = TableRow::new([
        Cell::from("KIND"),
        Cell::from("NAME"),
        Cell::from("TYPE"),
        Cell::from(Line::from("IN/S").right_aligned()),
        Cell::from(Line::from("OUT/S").right_aligned()),
        Cell::from("FILL"),
        Cell::from(Line::from("ERRORS").right_aligned()),
    ])
    .style(bold);
    let rows: Vec<TableRow> = d
        .rows
        .iter()
        .map(|r| {
            let errors_style = if r.errors_rising {
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else if r.errors > 0 {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new()
            };
            TableRow::new(vec![
                Cell::from(r.kind.word()).style(kind_style(r.kind)),
                Cell::from(r.name.clone()),
                Cell::from(r.type_name.clone().unwrap_or_else(|| "-".into())),
                Cell::from(Line::from(format_rate(r.rate_in)).right_aligned()),
                Cell::from(Line::from(format_rate(r.rate_out)).right_aligned()),
                Cell::from(r.fill.map(bar).unwrap_or_default()),
                Cell::from(Line::from(r.errors.to_string()).right_aligned()).style(errors_style),
            ])
        })
        .collect();
    Table::new(
        rows,
        [
            Constraint::Length(7),
            Constraint::Length(name_w),
            Constraint::Length(type_w),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(fill_w),
            Constraint::Length(7),
        ],
    )
    .header(header)
    .column_spacing(2)
    .block(Block::bordered().title(" components "))
}

fn kind_style(kind: Kind) -> Style {
    match kind {
        Kind::Source => Style::new().fg(Color::Cyan),
        Kind::Channel => Style::new().fg(Color::Magenta),
        Kind::Sink => Style::new().fg(Color::Blue),
    }
}

/// A channel's fill: a bar coloured by level, then `52% 520/1000`.
fn bar(fill: Fill) -> Line<'static> {
    let full = ((fill.ratio() * BAR_WIDTH as f64).round() as usize).min(BAR_WIDTH);
    let color = match fill.percent() {
        0..=49 => Color::Green,
        50..=79 => Color::Yellow,
        _ => Color::Red,
    };
    Line::from(vec![
        Span::styled("█".repeat(full), Style::new().fg(color)),
        Span::styled(
            "░".repeat(BAR_WIDTH - full),
            Style::new().add_modifier(Modifier::DIM),
        ),
        Span::raw(format!(
            " {:>3}% {}/{}",
            fill.percent(),
            fill.size,
            fill.capacity
        )),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::Sample;
    use crate::model::{parse_metrics, Graph, Reading};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::time::Instant;

    fn screen(d: &Dashboard) -> String {
        let mut t = Terminal::new(TestBackend::new(100, 20)).unwrap();
        t.draw(|f| render(f, d, Duration::from_secs(1))).unwrap();
        let buffer = t.backend().buffer().clone();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    #[test]
    fn the_frame_shows_components_fill_and_paths() {
        let mut d = Dashboard::new("http://127.0.0.1:9");
        let body = r#"{"SOURCE.r1": {}, "CHANNEL.c1": {"ChannelSize": "500", "ChannelCapacity": "1000"},
                       "SINK.k1": {"ConnectionFailedCount": "2"}}"#;
        let sample = Sample {
            reading: Reading {
                at: Instant::now(),
                components: parse_metrics(body).unwrap(),
            },
            graph: Some(
                Graph::parse(
                    r#"{"agent":"a7","sources":[["r1","netcat",["c1"]]],
                        "channels":[["c1","memory"]],"sinks":[["k1","file_roll","c1"]]}"#,
                )
                .unwrap(),
            ),
        };
        d.update(Ok(sample), "10:00:00");
        let s = screen(&d);
        assert!(
            s.contains("flumen top  http://127.0.0.1:9  agent a7  refreshed 10:00:00"),
            "{s}"
        );
        assert!(s.contains("status: ok"), "{s}");
        assert!(
            s.contains(&format!(
                "{}{}  50% 500/1000",
                "█".repeat(10),
                "░".repeat(10)
            )),
            "{s}"
        );
        assert!(
            s.contains("r1 (netcat) → c1 (memory) → k1 (file_roll)"),
            "{s}"
        );
        let sink = s.lines().find(|l| l.contains("k1  ")).unwrap();
        assert!(
            sink.contains("file_roll")
                && sink
                    .trim_end()
                    .trim_end_matches('│')
                    .trim_end()
                    .ends_with('2'),
            "{sink}"
        );
    }

    #[test]
    fn only_q_escape_and_ctrl_c_quit() {
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        assert!(is_quit(&key(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(is_quit(&key(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(is_quit(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!is_quit(&key(KeyCode::Char('c'), KeyModifiers::NONE)));
        assert!(!is_quit(&key(KeyCode::Char('x'), KeyModifiers::NONE)));
    }
}
