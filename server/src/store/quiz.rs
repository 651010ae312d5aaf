//! Quiz questions and answers (N3).

use sqlx::{Any, Row, Transaction};

use super::rooms::lock_room;
use super::{
    AnswerOutcome, NewQuestion, Question, Store, StoreError, new_id, now_ms, require_text, to_u32,
};

const QUESTION_BY_ID: &str = "SELECT id, room_id, question, options_json, answer, \
     time_limit_secs, question_number, total_questions, start_time, created_at \
     FROM questions WHERE id = $1";

async fn fetch_question(
    tx: &mut Transaction<'static, Any>,
    question_id: &str,
) -> Result<Question, StoreError> {
    let row = sqlx::query(QUESTION_BY_ID)
        .bind(question_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::not_found("question", question_id))?;
    Question::from_row(&row)
}

impl Store {
    /// Creates an unpublished question in a room. `Invalid` if the text is
    /// empty, there are fewer than 2 options, options repeat or are empty,
    /// `answer` is not one of them, `time_limit_secs` is 0, or
    /// `question_number` > `total_questions`. `question_number` defaults to
    /// the room's question count + 1, `total_questions` to
    /// `question_number`. `RoomNotFound`.
    pub async fn create_question(
        &self,
        room_id: &str,
        new: NewQuestion,
    ) -> Result<Question, StoreError> {
        require_text("question", &new.question)?;
        if new.options.len() < 2 {
            return Err(StoreError::Invalid(
                "a question needs at least 2 options".into(),
            ));
        }
        for (i, option) in new.options.iter().enumerate() {
            require_text("option", option)?;
            if new.options[..i].contains(option) {
                return Err(StoreError::Invalid(format!(
                    "option {option:?} is repeated"
                )));
            }
        }
        if !new.options.contains(&new.answer) {
            return Err(StoreError::Invalid(
                "answer must be one of the options".into(),
            ));
        }
        if new.time_limit_secs == 0 {
            return Err(StoreError::Invalid(
                "timeLimit must be at least 1 second".into(),
            ));
        }
        if new.question_number == Some(0) || new.total_questions == Some(0) {
            return Err(StoreError::Invalid(
                "questionNumber and totalQuestions start at 1".into(),
            ));
        }
        let options_json =
            serde_json::to_string(&new.options).map_err(|e| StoreError::Internal(e.to_string()))?;

        let mut tx = self.begin_write().await?;
        lock_room(&mut tx, room_id).await?;
        let question_number = match new.question_number {
            Some(n) => n,
            None => {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM questions WHERE room_id = $1")
                    .bind(room_id)
                    .fetch_one(&mut *tx)
                    .await?;
                to_u32(row.try_get::<i64, _>("n")?).saturating_add(1)
            }
        };
        let total_questions = new.total_questions.unwrap_or(question_number);
        if question_number > total_questions {
            return Err(StoreError::Invalid(format!(
                "questionNumber {question_number} exceeds totalQuestions {total_questions}"
            )));
        }
        let question = Question {
            id: new_id("q"),
            room_id: room_id.to_string(),
            question: new.question,
            options: new.options,
            answer: new.answer,
            time_limit: new.time_limit_secs,
            question_number,
            total_questions,
            start_time_ms: None,
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO questions (id, room_id, question, options_json, answer, \
                                    time_limit_secs, question_number, total_questions, \
                                    start_time, answer_count, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 0, $9)",
        )
        .bind(&question.id)
        .bind(&question.room_id)
        .bind(&question.question)
        .bind(&options_json)
        .bind(&question.answer)
        .bind(i64::from(question.time_limit))
        .bind(i64::from(question.question_number))
        .bind(i64::from(question.total_questions))
        .bind(question.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(question)
    }

    /// Publishes a question: stamps `start_time_ms = now_ms` (server clock).
    /// `NotFound` if the question is not in this room (`RoomNotFound` if the
    /// room is unknown); `Conflict` if it is already published.
    pub async fn publish_question(
        &self,
        room_id: &str,
        question_id: &str,
        now_ms: i64,
    ) -> Result<Question, StoreError> {
        let mut tx = self.begin_write().await?;
        lock_room(&mut tx, room_id).await?;
        let done = sqlx::query(
            "UPDATE questions SET start_time = $3 \
             WHERE id = $1 AND room_id = $2 AND start_time IS NULL",
        )
        .bind(question_id)
        .bind(room_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let question = fetch_question(&mut tx, question_id).await?;
        if question.room_id != room_id {
            return Err(StoreError::not_found("question", question_id));
        }
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "question {question_id} is already published"
            )));
        }
        tx.commit().await?;
        Ok(question)
    }

    /// A question by id (with its answer key).
    pub async fn get_question(&self, question_id: &str) -> Result<Option<Question>, StoreError> {
        sqlx::query(QUESTION_BY_ID)
            .bind(question_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| Question::from_row(&row))
            .transpose()
    }

    /// A room's questions by number. `RoomNotFound`.
    pub async fn list_questions(&self, room_id: &str) -> Result<Vec<Question>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, room_id, question, options_json, answer, time_limit_secs, \
                    question_number, total_questions, start_time, created_at \
             FROM questions WHERE room_id = $1 ORDER BY question_number, created_at, id",
        )
        .bind(room_id)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() && self.get_room(room_id).await?.is_none() {
            return Err(StoreError::RoomNotFound(room_id.to_string()));
        }
        rows.iter().map(Question::from_row).collect()
    }

    /// Records a user's answer, received at `received_ms` on the server's
    /// clock, in one transaction (N3). Every check is done here:
    ///
    /// * `NotFound` (question) for an unknown question;
    /// * `Forbidden` if `participant_id` is not `user_id`'s participation in
    ///   the question's room;
    /// * `Invalid` if the question is unpublished, the answer is not one of
    ///   the options, more than `time_limit` seconds have passed since
    ///   `startTime`, or the user already answered ("already answered").
    ///
    /// `response_time_secs` = (received - start) / 1000 (never negative);
    /// `rank` = 1 + the number of earlier correct answers when correct.
    /// Concurrent answers to one question are serialized (SQLite: `BEGIN
    /// IMMEDIATE`; PostgreSQL: the question's row lock), so ranks are
    /// unique and gap-free in arrival order.
    pub async fn record_answer(
        &self,
        question_id: &str,
        user_id: &str,
        participant_id: &str,
        answer: &str,
        received_ms: i64,
    ) -> Result<AnswerOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        // Lock the question row (PostgreSQL) before reading anything.
        let locked =
            sqlx::query("UPDATE questions SET answer_count = answer_count + 1 WHERE id = $1")
                .bind(question_id)
                .execute(&mut *tx)
                .await?;
        if locked.rows_affected() == 0 {
            return Err(StoreError::not_found("question", question_id));
        }
        let question = fetch_question(&mut tx, question_id).await?;

        let member = sqlx::query(
            "SELECT id FROM participants WHERE id = $1 AND room_id = $2 AND user_id = $3",
        )
        .bind(participant_id)
        .bind(&question.room_id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        if member.is_none() {
            return Err(StoreError::Forbidden(format!(
                "not a participant of room {}",
                question.room_id
            )));
        }
        let Some(start_ms) = question.start_time_ms else {
            return Err(StoreError::Invalid(format!(
                "question {question_id} is not published"
            )));
        };
        if !question.options.iter().any(|o| o == answer) {
            return Err(StoreError::Invalid(
                "answer is not one of the question's options".into(),
            ));
        }
        let elapsed_ms = received_ms.saturating_sub(start_ms).max(0);
        if elapsed_ms > i64::from(question.time_limit) * 1000 {
            return Err(StoreError::Invalid(format!(
                "the time limit of {} s has passed",
                question.time_limit
            )));
        }
        let already =
            sqlx::query("SELECT 1 AS one FROM answers WHERE question_id = $1 AND user_id = $2")
                .bind(question_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if already.is_some() {
            return Err(StoreError::Invalid("already answered".into()));
        }

        let correct = answer == question.answer;
        let rank = if correct {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM answers WHERE question_id = $1 AND correct = 1",
            )
            .bind(question_id)
            .fetch_one(&mut *tx)
            .await?;
            Some(to_u32(row.try_get::<i64, _>("n")?).saturating_add(1))
        } else {
            None
        };
        sqlx::query(
            "INSERT INTO answers (question_id, user_id, participant_id, answer, correct, \
                                  response_time_ms, correct_rank, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(question_id)
        .bind(user_id)
        .bind(participant_id)
        .bind(answer)
        .bind(i64::from(correct))
        .bind(elapsed_ms)
        .bind(rank.map(i64::from))
        .bind(received_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            // A concurrent duplicate that slipped past the check above.
            StoreError::Conflict(_) => StoreError::Invalid("already answered".into()),
            other => other,
        })?;
        tx.commit().await?;
        Ok(AnswerOutcome {
            correct,
            response_time_secs: elapsed_ms as f64 / 1000.0,
            rank,
        })
    }
}
