//! Black-box tests: the real server on port 0, spoken to like Twilio.

mod common;

use common::{Phone, TestServer, message_text};

#[tokio::test]
async fn a_conversation_counts_one_two_three() {
    let server = TestServer::start(&[]).await;
    let mut phone = Phone::new("+14155550199", "+14155550100");
    let replies = [
        message_text(&phone.text(&server, "hi").await),
        message_text(&phone.text(&server, "again").await),
        message_text(&phone.text(&server, "and again").await),
    ];
    assert_eq!(
        replies,
        [
            "Hello, thanks for the new message.",
            "Hello, thanks for message number 2",
            "Hello, thanks for message number 3"
        ]
    );
}
